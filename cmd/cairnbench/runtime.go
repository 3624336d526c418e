package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// runRuntime measures issue 14's targets: `run rm -- true` on a busybox
// image against bare `runc run` of the same bundle and `podman run --rm
// --runtime runc` (network none for all three), alternating, in one run;
// 50 containers started at once; and the logs stream keeping up with a
// container that prints as fast as it can.
func runRuntime(ctx context.Context, b *bench) error {
	if os.Geteuid() != 0 {
		b.skip("runtime", "needs root (containers)")
		return nil
	}
	runcBin, err := exec.LookPath("runc")
	if err != nil {
		b.skip("runtime", "needs runc (Debian runc)")
		return nil
	}
	archive := filepath.Join(b.tmp, "busybox.tar")
	if err := imagetest.WriteBusybox(archive, "busybox:latest", nil); err != nil {
		return err
	}
	d, err := b.newDaemon(filepath.Join(b.tmp, "runtime-data"))
	if err != nil {
		return err
	}
	if _, _, err := d.start(ctx); err != nil {
		return err
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// Containers outlive their daemon by design: whatever the run leaves,
	// remove before the daemon stops.
	defer func() {
		res, err := c.Do(context.Background(), "ps all")
		if err != nil {
			return
		}
		for _, row := range res.Rows {
			var ps struct{ Names string }
			if json.Unmarshal(row, &ps) == nil && ps.Names != "" {
				_, _ = c.Do(context.Background(), "rm "+ps.Names+" force")
			}
		}
	}()
	if _, err := c.Do(ctx, "image import "+strconv.Quote(archive)+" tag=busybox"); err != nil {
		return err
	}
	cliRun := func(args ...string) error {
		cmd := exec.CommandContext(ctx, b.cfg.bin, append([]string{"--socket", d.Socket}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("cairn %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	// The bundle cairn made for a container that ran `true`: bare runc
	// runs exactly it.
	if err := cliRun("run", "busybox", "name=bundle", "network=none", "--", "true"); err != nil {
		return err
	}
	res, err := c.Do(ctx, "inspect bundle")
	if err != nil || len(res.Rows) != 1 {
		return fmt.Errorf("inspect bundle: %v", err)
	}
	var in struct{ ID string }
	_ = json.Unmarshal(res.Rows[0], &in)
	bundle := filepath.Join(d.Data, "runtime", "containers", in.ID)
	if _, err := c.Do(ctx, "start bundle"); err != nil { // mounts its rootfs again
		return err
	}
	if _, err := c.Do(ctx, "wait bundle"); err != nil {
		return err
	}
	bareRoot := filepath.Join(b.tmp, "runc-bare")
	podman, _ := exec.LookPath("podman")
	// podman mounts its overlay store and leaves it mounted: unmount it,
	// or the run's directory cannot go.
	defer func() { _ = unix.Unmount(filepath.Join(b.tmp, "podman-root", "overlay"), unix.MNT_DETACH) }()
	// podman always gives its containers RLIMIT_NOFILE and RLIMIT_NPROC,
	// which a sandbox that refuses setrlimit (this machine) makes fail:
	// its runtime is a wrapper that removes process.rlimits from the
	// bundle and runs the same runc (cairn's bundles set none, as
	// Docker's do not). The wrapper's sh and sed count against podman.
	podmanRuntime := filepath.Join(b.tmp, "runc-norlimits")
	if err := os.WriteFile(podmanRuntime, []byte(norlimitsWrapper(runcBin)), 0o755); err != nil {
		return err
	}
	podmanArgs := []string{"--root", filepath.Join(b.tmp, "podman-root"), "--runroot", filepath.Join(b.tmp, "podman-run"), "--runtime", podmanRuntime, "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	if podman != "" {
		if out, err := exec.CommandContext(ctx, podman, append(podmanArgs, "load", "-i", archive)...).CombinedOutput(); err != nil {
			b.logf("podman load failed, podman left out: %v: %s", err, out)
			podman = ""
		}
	}
	rounds := 16
	if b.cfg.quick {
		rounds = 4
	}
	var cairnT, cliT, runcT, podmanT []float64
	// Each round runs the four once, in the orders of a balanced Latin
	// square (a Williams design: 0 1 3 2, turned by one each round), so
	// that over every four rounds each follows each of the others once: a
	// run pays for what the one before it left the kernel to do (a
	// cgroup's and a mount's release are deferred work), and podman's
	// leaves the most. (Turning one order by one would keep podman before
	// the socket's run in three rounds of four.)
	order := [4]int{0, 1, 3, 2}
	steps := []func(r int) error{
		func(int) error {
			// Through the socket, as any client asks: the request is the
			// start, its exit answer the end.
			start := time.Now()
			res, err := c.Do(ctx, "run busybox rm network=none -- true")
			if err != nil {
				return err
			}
			if res.Exit == nil || *res.Exit != 0 {
				return fmt.Errorf("run rm -- true: no exit 0 answered")
			}
			cairnT = append(cairnT, time.Since(start).Seconds())
			return nil
		},
		func(int) error {
			// The same from the shell: the cairn CLI process included.
			start := time.Now()
			if err := cliRun("run", "busybox", "rm", "network=none", "--", "true"); err != nil {
				return err
			}
			cliT = append(cliT, time.Since(start).Seconds())
			return nil
		},
		func(r int) error {
			start := time.Now()
			if out, err := exec.CommandContext(ctx, runcBin, "--root", bareRoot, "run", "--bundle", bundle, fmt.Sprintf("bare%d", r)).CombinedOutput(); err != nil {
				return fmt.Errorf("bare runc run: %v: %s", err, out)
			}
			runcT = append(runcT, time.Since(start).Seconds())
			return nil
		},
		func(int) error {
			if podman == "" {
				return nil
			}
			start := time.Now()
			if out, err := exec.CommandContext(ctx, podman, append(podmanArgs, "run", "--rm", "--network", "none", "busybox", "true")...).CombinedOutput(); err != nil {
				b.logf("podman run failed, podman left out: %v: %s", err, out)
				podman = ""
			} else {
				podmanT = append(podmanT, time.Since(start).Seconds())
			}
			return nil
		},
	}
	for r := range rounds {
		for i := range steps {
			if err := steps[(r+order[i])%len(steps)](r); err != nil {
				return err
			}
		}
	}
	cm, rm := median(cairnT), median(runcT)
	b.add("run rm -- true (busybox) through the socket, p50", "", ms(cm), nil)
	b.add("cairn run rm -- true from the shell (CLI process included), p50", "", ms(median(cliT)), nil)
	b.add("bare runc run of the same bundle, p50", "", ms(rm), nil)
	b.add("run rm -- true / runc run", "≤ 1.5×", fmt.Sprintf("%.2f×", cm/rm), ptr(cm/rm <= 1.5))
	if len(podmanT) > 0 {
		pm := median(podmanT)
		b.add("podman run --rm --runtime runc, p50", "", ms(pm), nil)
		b.add("podman / cairn run rm -- true", "≥ 2×", fmt.Sprintf("%.2f×", pm/cm), ptr(pm/cm >= 2))
	} else {
		b.skip("podman comparison", "podman is not installed or could not run here")
	}
	if err := runtimeFifty(ctx, b, c, d); err != nil {
		return err
	}
	return runtimeLogRate(ctx, b, c, cliRun)
}

// norlimitsWrapper is a shell script that runs runc after removing
// process.rlimits from the config.json of the bundle it is given.
func norlimitsWrapper(runc string) string {
	return `#!/bin/sh
prev=""
for a in "$@"; do
	if [ "$prev" = "--bundle" ] || [ "$prev" = "-b" ]; then
		sed -i -e 's/,"rlimits":\[[^]]*\]//' -e 's/"rlimits":\[[^]]*\],\{0,1\}//' "$a/config.json"
	fi
	prev="$a"
done
exec ` + runc + ` "$@"
`
}

// runtimeFifty starts 50 detached containers at once and waits until all
// run; the figure is the wall time and the daemon's RSS after.
func runtimeFifty(ctx context.Context, b *bench, c *client.Client, d *daemonProc) error {
	const n = 50
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(ctx, fmt.Sprintf("run busybox name=f%d detach network=none -- sleep 600", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("50 containers: %w", err)
	}
	took := time.Since(start).Seconds()
	res, err := c.Do(ctx, "ps")
	if err != nil {
		return err
	}
	if len(res.Rows) < n {
		return fmt.Errorf("50 containers: ps shows %d running", len(res.Rows))
	}
	rss, _ := d.rssKB()
	b.add("50 containers started at once (detach), all running", "", fmt.Sprintf("%.2f s, daemon RSS %d MiB", took, rss>>10), nil)
	for i := range n {
		if _, err := c.Do(ctx, fmt.Sprintf("rm f%d force", i)); err != nil {
			return err
		}
	}
	return nil
}

// runtimeLogRate runs a container printing 500,000 numbered lines as fast
// as busybox seq can, and measures when the logs stream holds them all.
func runtimeLogRate(ctx context.Context, b *bench, c *client.Client, cliRun func(...string) error) error {
	const lines = 500000
	start := time.Now()
	if err := cliRun("run", "busybox", "name=chatty", "network=none", "--", "seq", "1", strconv.Itoa(lines)); err != nil {
		return err
	}
	took := time.Since(start).Seconds()
	res, err := c.Do(ctx, "events stream=logs kind=container.log where 'container.name == \"chatty\"' limit=1000000")
	if err != nil {
		return err
	}
	if len(res.Events) != lines {
		return fmt.Errorf("the logs stream holds %d of chatty's %d lines", len(res.Events), lines)
	}
	rate := float64(lines) / took
	b.add("container output into the logs stream (seq 1 500000, run to done)", "≥ 50k lines/s, 0 lost", fmt.Sprintf("%.0f lines/s, 0 lost", rate), ptr(rate >= 50000))
	return nil
}
