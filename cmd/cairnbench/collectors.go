package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// The collectors part (issue 19): what the metrics engine's collection
// (host, cAdvisor-style containers, cairn's own, stored in the TSDB) costs
// the daemon in CPU with 50 containers running.
//
// The daemon's CPU is read from /proc/PID/stat (utime + stime) over a
// window of whole collection intervals. Its CPU rate is a baseline (the Go
// runtime, the other engines) plus the collection's cost c divided by the
// interval, so the same daemon measured at two intervals, 1 s and 10 s,
// gives c = (rate₁ − rate₁₀) / (1/1 − 1/10) without the baseline, which
// no flag turns off. That is done with no container and with 50.

// collectorWindow is how long each rate is measured at each interval.
func collectorWindow(quick bool, interval time.Duration) time.Duration {
	n := 6 // collections at 10 s
	if interval < 10*time.Second {
		n = 30
	}
	if quick {
		n /= 2
	}
	return time.Duration(n) * interval
}

// cpuRate measures the daemon's CPU seconds per second over window.
func cpuRate(ctx context.Context, pid int, window time.Duration) (float64, error) {
	c0, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	c1, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	return (c1 - c0).Seconds() / time.Since(t0).Seconds(), nil
}

func runCollectors(ctx context.Context, b *bench) error {
	if os.Geteuid() != 0 {
		b.skip("collectors", "needs root (containers)")
		return nil
	}
	if _, err := exec.LookPath("runc"); err != nil {
		b.skip("collectors", "needs runc (Debian runc)")
		return nil
	}
	archive := filepath.Join(b.tmp, "busybox.tar")
	if err := imagetest.WriteBusybox(archive, "busybox:latest", nil); err != nil {
		return err
	}
	d, err := b.newDaemon(filepath.Join(b.tmp, "collectors-data"))
	if err != nil {
		return err
	}
	base := append([]string(nil), d.Extra...)
	start := func(interval time.Duration) (*client.Client, error) {
		d.Extra = append(append([]string(nil), base...), "--statsd", "127.0.0.1:0", "--metrics-interval", interval.String())
		if _, _, err := d.start(ctx); err != nil {
			return nil, err
		}
		return d.Dial(ctx)
	}
	c, err := start(10 * time.Second)
	if err != nil {
		return err
	}
	// Containers outlive their daemon: remove them before it stops.
	defer func() {
		if c == nil {
			return
		}
		res, err := c.Do(context.Background(), "ps all")
		if err == nil {
			for _, row := range res.Rows {
				var ps struct{ Names string }
				if json.Unmarshal(row, &ps) == nil && ps.Names != "" {
					_, _ = c.Do(context.Background(), "rm "+ps.Names+" force")
				}
			}
		}
		c.Close()
	}()
	if _, err := c.Do(ctx, "image import "+strconv.Quote(archive)+" tag=busybox"); err != nil {
		return err
	}
	pid := func() int { return d.Cmd.Process.Pid }
	rate := func(interval time.Duration) (float64, error) {
		// Settle after a start or a change first: the start's own work
		// (the WAL replayed, the first collections) stays out.
		select {
		case <-time.After(max(2*interval, 10*time.Second)):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return cpuRate(ctx, pid(), collectorWindow(b.cfg.quick, interval))
	}
	restart := func(interval time.Duration) error {
		c.Close()
		c = nil
		if err := d.stop(syscall.SIGTERM); err != nil {
			return err
		}
		c, err = start(interval)
		return err
	}

	const want = 50
	r10, r1 := map[int]float64{}, map[int]float64{}
	if r10[0], err = rate(10 * time.Second); err != nil {
		return err
	}
	n, err := startSleepers(ctx, c, want)
	if err != nil {
		return err
	}
	if n < want {
		b.logf("collectors: only %d of %d containers run here", n, want)
	}
	seen, err := collectedContainers(ctx, c)
	if err != nil {
		return err
	}
	if r10[n], err = rate(10 * time.Second); err != nil {
		return err
	}
	var scrape10 float64
	if res, err := c.Do(ctx, `metrics query 'quantile_over_time(0.5, scrape_duration_seconds{job="cairn"}[2m])'`); err == nil && len(res.Rows) == 1 {
		var row struct{ Value float64 }
		_ = json.Unmarshal(res.Rows[0], &row)
		scrape10 = row.Value
	}
	if err := restart(time.Second); err != nil {
		return err
	}
	if r1[n], err = rate(time.Second); err != nil {
		return err
	}
	for i := range want {
		_, _ = c.Do(ctx, fmt.Sprintf("rm c%d force", i))
	}
	if r1[0], err = rate(time.Second); err != nil {
		return err
	}
	cost := func(k int) float64 { return (r1[k] - r10[k]) / (1 - 0.1) }
	b.add(fmt.Sprintf("collectors: daemon CPU at a 10 s interval, %d containers (%d collected)", n, seen), "",
		fmt.Sprintf("%.2f%% of one CPU (%.3f CPU-s per 10 s interval); no container: %.2f%%", r10[n]*100, r10[n]*10, r10[0]*100), nil)
	b.add(fmt.Sprintf("collectors: CPU per collection, %d containers", n), "",
		fmt.Sprintf("%.1f ms (no container: %.1f ms; %.2f ms a container); gather + store wall time, median: %.1f ms", cost(n)*1e3, cost(0)*1e3, (cost(n)-cost(0))*1e3/float64(max(n, 1)), scrape10*1e3), nil)
	b.logf("collectors: CPU rates (CPU-s/s) at 10 s: %.4f (0), %.4f (%d); at 1 s: %.4f (%d), %.4f (0)", r10[0], r10[n], n, r1[n], n, r1[0])
	return nil
}

// startSleepers starts n detached busybox containers (c0, c1, …) running
// sleep, as many at once as the runtime takes, and answers how many run.
func startSleepers(ctx context.Context, c *client.Client, n int) (int, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(ctx, fmt.Sprintf("run busybox name=c%d detach network=none -- sleep 3600", i)); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res, err := c.Do(ctx, "ps")
	if err != nil {
		return 0, err
	}
	if len(res.Rows) == 0 && firstErr != nil {
		return 0, fmt.Errorf("no container started: %w", firstErr)
	}
	return len(res.Rows), nil
}

// collectedContainers waits until the collector's series show the
// running containers, and answers how many it collects.
func collectedContainers(ctx context.Context, c *client.Client) (int, error) {
	deadline := time.Now().Add(60 * time.Second)
	last := -1
	for {
		res, err := c.Do(ctx, "metrics query 'count(container_cpu_usage_seconds_total)'")
		if err != nil {
			return 0, err
		}
		n := 0
		if len(res.Rows) == 1 {
			var row struct{ Value float64 }
			_ = json.Unmarshal(res.Rows[0], &row)
			n = int(row.Value)
		}
		if n > 0 && n == last {
			return n, nil
		}
		last = n
		if time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
