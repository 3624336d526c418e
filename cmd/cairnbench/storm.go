package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	d, err := b.newDaemon(filepath.Join(b.tmp, "storm-data"))
	if err != nil {
		return err
	}
	if _, _, err := d.start(ctx, b.cfg.bin); err != nil {
		return err
	}
	c, err := client.Dial(ctx, d.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Do(ctx, "capture start proc"); err != nil {
		return fmt.Errorf("capture start proc: %w", err)
	}
	dur := stormFor
	if b.cfg.quick {
		dur = 3 * time.Second
	}
	// Shell loops fork and exec faster than Go's os/exec.
	var shells []*exec.Cmd
	for range 4 {
		sh := exec.Command("sh", "-c", "while :; do "+truePath+"; done")
		if err := sh.Start(); err != nil {
			return err
		}
		shells = append(shells, sh)
	}
	start := time.Now()
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	for _, sh := range shells {
		_ = sh.Process.Kill()
		_ = sh.Wait()
	}
	el := time.Since(start).Seconds()
	// Let the pipeline drain what the kernel already sent.
	time.Sleep(time.Second)
	if _, err := c.Do(ctx, "capture stop proc"); err != nil {
		return err
	}
	execs, err := countQuery(ctx, c, `events stream=capture kind=capture.exec where 'proc.exe == "`+truePath+`"' count`)
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
	b.facts = append(b.facts, fmt.Sprintf("storm: 4 shells run %s in a loop for %.0f s", truePath, el))
	b.add("capture proc, fork/exec storm: execs/s stored", "", fmt.Sprintf("%s (%d execs of true)", rate(float64(execs)/el), execs), nil)
	b.add("capture proc, fork/exec storm: events/s stored", "", fmt.Sprintf("%s, %d drops", rate(float64(all)/el), drops), nil)
	return nil
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
