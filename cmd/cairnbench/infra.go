package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client"
)

// infraLinks is half of issue 6's 1,000 resources: that many links and an
// address on each.
const infraLinks = 500

// runInfra measures issue 6's targets through the real daemon: plan +
// apply of 1,000 net resources (links and addresses in a namespace made
// for the run) in one `infra apply … auto-approve`, then a no-op plan of
// them. Each round uses a fresh namespace, torn down outside the timing.
func runInfra(ctx context.Context, b *bench) error {
	if os.Geteuid() != 0 {
		b.skip("infra", "needs root (network namespaces)")
		return nil
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		b.skip("infra", "needs ip (iproute2)")
		return nil
	}
	c, err := b.daemonClient(ctx, "infra-data")
	if err != nil {
		return err
	}
	defer c.Close()
	rounds := b.cfg.rounds
	n := infraLinks
	if b.cfg.quick {
		rounds, n = 2, 100
	}
	var applies, noops []float64
	kind := ""
	for r := range rounds {
		ns, err := newNetns(ip)
		if err != nil {
			return err
		}
		deleted := false
		defer func() {
			if !deleted {
				_ = exec.Command(ip, "netns", "del", ns).Run()
			}
		}()
		if kind == "" {
			kind = "dummy"
			if exec.Command(ip, "-n", ns, "link", "add", "probe", "type", "dummy").Run() != nil {
				kind = "bridge" // this kernel has no dummy links
			} else {
				exec.Command(ip, "-n", ns, "link", "del", "probe").Run()
			}
		}
		dir := filepath.Join(b.tmp, fmt.Sprintf("infra-%d", r))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		src := fmt.Sprintf(`
resource "net_link" "l" {
  count     = %d
  namespace = %q
  name      = "l${count.index}"
  kind      = %q
  mtu       = 1400
}
resource "net_address" "a" {
  count     = %d
  namespace = %q
  link      = net_link.l[count.index].name
  cidr      = "10.${floor(count.index / 256)}.${count.index %% 256}.1/24"
}
`, n, ns, kind, n, ns)
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
			return err
		}
		start := time.Now()
		res, err := c.Do(ctx, "infra apply "+strconv.Quote(dir)+" auto-approve parallelism=10")
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		applies = append(applies, time.Since(start).Seconds())
		if text := strings.Join(res.Lines, "\n"); !strings.Contains(text, fmt.Sprintf("%d added", 2*n)) {
			return fmt.Errorf("apply answered %q", text)
		}
		start = time.Now()
		res, err = c.Do(ctx, "infra plan "+strconv.Quote(dir))
		if err != nil {
			return fmt.Errorf("no-op plan: %w", err)
		}
		noops = append(noops, time.Since(start).Seconds())
		if !strings.Contains(strings.Join(res.Lines, "\n"), "No changes.") {
			return errors.New("the plan after the apply is not empty")
		}
		b.logf("round %d: plan+apply %.2fs, no-op plan %.3fs", r+1, applies[r], noops[r])
		deleted = true
		if err := delNetns(ctx, c, ip, ns, filepath.Base(dir)); err != nil {
			return err
		}
	}
	b.facts = append(b.facts, fmt.Sprintf("infra: %d %s links + %d addresses per round, in a fresh network namespace", n, kind, n))
	a, o := median(applies), median(noops)
	b.add(fmt.Sprintf("infra plan+apply %d net resources", 2*n), "< 5 s", fmt.Sprintf("%.2f s", a), ptr(a < 5))
	b.add(fmt.Sprintf("infra no-op plan of %d", 2*n), "< 1 s", ms(o), ptr(o < 1))
	return nil
}

func newNetns(ip string) (string, error) {
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return "", err
	}
	ns := "cairnbench-" + hex.EncodeToString(rb[:])
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	return ns, nil
}

// delNetns deletes a namespace, has the daemon forget what was in it (its
// drift watch holds the namespace until then), and waits for the kernel
// to finish tearing down its links: bridges take ~16 ms each under the
// global rtnl lock, which would otherwise slow the next round.
func delNetns(ctx context.Context, c *client.Client, ip, ns, ws string) error {
	if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del: %v: %s", err, out)
	}
	if _, err := c.Do(ctx, "infra refresh workspace="+ws); err != nil {
		return fmt.Errorf("refresh after deleting the namespace: %w", err)
	}
	time.Sleep(200 * time.Millisecond)
	for range 600 {
		start := time.Now()
		if err := exec.Command(ip, "link", "show", "dev", "lo").Run(); err != nil {
			return err
		}
		if time.Since(start) < 50*time.Millisecond {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
