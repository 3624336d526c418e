package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/client"
)

// stormFor is how long the fork/exec storm runs.
const stormFor = 10 * time.Second

// runStorm reports issue 5's second capture figure: the rate the proc
// source stores under a real fork/exec storm (processes that fork, exec
// /bin/true and exit as fast as two cores allow), with the drops the
// pipeline counted. Root only (the proc connector).
func runStorm(ctx context.Context, b *bench) error {
	if os.Geteuid() != 0 {
		b.skip("storm", "needs root (the proc connector)")
		return nil
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		return err
	}
	c, err := b.daemonClient(ctx, "storm-data")
	if err != nil {
		return err
	}
	defer c.Close()
	dur := stormFor
	if b.cfg.quick {
		dur = 3 * time.Second
	}
	// The same storm without capture first: what this machine spawns.
	base, baseEl, err := storm(ctx, truePath, b.tmp, dur)
	if err != nil {
		return err
	}
	if _, err := c.Do(ctx, "capture start proc"); err != nil {
		return fmt.Errorf("capture start proc: %w", err)
	}
	spawned, el, err := storm(ctx, truePath, b.tmp, dur)
	if err != nil {
		return err
	}
	// Let the pipeline drain what the kernel already sent.
	time.Sleep(time.Second)
	if _, err := c.Do(ctx, "capture stop proc"); err != nil {
		return err
	}
	execs, err := countQuery(ctx, c, "events stream=capture kind=capture.exec count")
	if err != nil {
		return err
	}
	named, err := countQuery(ctx, c, `events stream=capture kind=capture.exec where 'proc.name == "true"' count`)
	if err != nil {
		return err
	}
	all, err := countQuery(ctx, c, "events stream=capture kind=capture.* count")
	if err != nil {
		return err
	}
	drops, err := stormDrops(ctx, c)
	if err != nil {
		return err
	}
	b.facts = append(b.facts, fmt.Sprintf("storm: 4 shells run %s in a loop for %.0f s, without then with capture start proc", truePath, el))
	b.add("fork/exec storm without capture: processes/s", "", rate(float64(base)/baseEl), nil)
	b.add("fork/exec storm with capture proc: processes/s", "", rate(float64(spawned)/el), nil)
	b.add("capture proc in the storm: execs stored", "", fmt.Sprintf("%d for %d processes (%s); %d named true, the rest exited before /proc was read", execs, spawned, rate(float64(execs)/el), named), nil)
	b.add("capture proc, fork/exec storm: events/s stored", "", fmt.Sprintf("%s, %d drops", rate(float64(all)/el), drops), nil)
	return nil
}

// storm runs 4 shells that exec truePath in a loop for dur and returns
// how many processes they ran (each shell writes its count when stopped).
func storm(ctx context.Context, truePath, tmp string, dur time.Duration) (int64, float64, error) {
	var shells []*exec.Cmd
	var files []string
	for i := range 4 {
		f := filepath.Join(tmp, fmt.Sprintf("storm-%d", i))
		files = append(files, f)
		script := fmt.Sprintf(`i=0; trap 'echo $i > %s; exit 0' TERM; while :; do %s; i=$((i+1)); done`, f, truePath)
		sh := exec.Command("sh", "-c", script)
		if err := sh.Start(); err != nil {
			return 0, 0, err
		}
		shells = append(shells, sh)
	}
	start := time.Now()
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	for _, sh := range shells {
		_ = sh.Process.Signal(syscall.SIGTERM)
	}
	for _, sh := range shells {
		_ = sh.Wait()
	}
	el := time.Since(start).Seconds()
	var n int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, 0, fmt.Errorf("storm count: %w", err)
		}
		var k int64
		fmt.Sscan(string(b), &k)
		n += k
	}
	return n, el, nil
}

func stormDrops(ctx context.Context, c *client.Client) (int64, error) {
	res, err := c.Do(ctx, "capture status")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, raw := range res.Rows {
		var row struct {
			Drops int64 `json:"drops"`
		}
		if err := json.Unmarshal(raw, &row); err != nil {
			return 0, err
		}
		total += row.Drops
	}
	return total, nil
}
