package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/journal"
)

// rareEvery makes ≈1% of the scan data set "bench.rare".
const rareEvery = 100

// writeDataset fills dir with n audit events through journal.Open/Append
// in batches of 1000: kind bench.rare for every 100th, bench.common
// otherwise; a realistic actor and subject; data.i = index mod 1000.
func writeDataset(ctx context.Context, dir string, n int) (float64, error) {
	j, err := journal.Open(journal.Options{Dir: dir, Logger: quietLogger(), Node: "bench-node"})
	if err != nil {
		return 0, err
	}
	defer j.Close()
	s := j.Stream(journal.Audit)
	users := []string{"alice", "bob", "deploy", "root"}
	comms := []string{"cairn", "terraform", "kubectl", "bash"}
	batch := make([]*journal.Body, 0, appendBatch)
	start := time.Now()
	for i := range n {
		kind := "bench.common"
		if i%rareEvery == rareEvery-1 {
			kind = "bench.rare"
		}
		u := i % len(users)
		batch = append(batch, &journal.Body{
			Kind:    kind,
			Subject: fmt.Sprintf("app/svc%d/config", i%50),
			Actor:   journal.Actor{UID: 1000 + u, GID: 1000, PID: 20000 + i%3000, User: users[u], Comm: comms[i%len(comms)], Via: "socket"},
			Data:    map[string]any{"i": int64(i % 1000), "op": "set", "size": int64(64 + i%4096)},
		})
		if len(batch) == appendBatch || i == n-1 {
			if _, err := s.Append(ctx, batch...); err != nil {
				return 0, err
			}
			batch = batch[:0]
		}
	}
	el := time.Since(start).Seconds()
	return float64(n) / el, j.Close()
}

// countQuery runs an `events … count` statement and returns the count.
func countQuery(ctx context.Context, c *client.Client, stmt string) (int64, error) {
	res, err := c.Do(ctx, stmt)
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 {
		return 0, fmt.Errorf("%s: %d rows, want one {\"count\":N}", stmt, len(res.Rows))
	}
	var row struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(res.Rows[0], &row); err != nil || row.Count == nil {
		return 0, fmt.Errorf("%s: row %s is not {\"count\":N}", stmt, res.Rows[0])
	}
	return *row.Count, nil
}

// runScanAndStartup builds the 1M-event data set once and runs the filter
// scan and, on the same directory, the start-up measurements.
func runScanAndStartup(ctx context.Context, b *bench) error {
	n := 1_000_000
	if b.cfg.quick {
		n = 200_000
	}
	data := filepath.Join(b.tmp, "scan-data")
	b.logf("writing %d events to %s", n, data)
	wr, err := writeDataset(ctx, data, n)
	if err != nil {
		return fmt.Errorf("write data set: %w", err)
	}
	b.add(fmt.Sprintf("(set-up) write %d events, journal batches of %d", n, appendBatch), "", rate(wr), nil)

	if b.cfg.wants("scan") {
		if err := runScan(ctx, b, data, n); err != nil {
			return err
		}
	}
	if b.cfg.wants("startup") {
		if err := runStartup(ctx, b, data, n); err != nil {
			return err
		}
	}
	return nil
}

func runScan(ctx context.Context, b *bench, data string, n int) error {
	d, err := b.newDaemon(data)
	if err != nil {
		return err
	}
	_, st, err := d.start(ctx)
	if err != nil {
		return err
	}
	defer d.stop(syscall.SIGTERM)
	total := st.Audit.Events // the data set plus the daemon's own events
	c, err := client.Dial(ctx, d.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	queries := []struct {
		label, stmt, target string
		want                int64
		min                 float64
	}{
		{"events where 'kind == \"bench.rare\"' count (1% match, CEL)", `events where 'kind == "bench.rare"' count`, ">= 1M events/s", int64(n / rareEvery), 1e6},
		{"events where 'data.i == 7' count (data predicate)", `events where 'data.i == 7' count`, "", int64(n / 1000), 0},
		{"events kind=bench.rare count (kind index, no CEL)", `events kind=bench.rare count`, "", int64(n / rareEvery), 0},
		{"events count (every event, no filter)", `events count`, "", total, 0},
	}
	for _, q := range queries {
		// One untimed pass warms the page cache and pebble's block cache, as
		// on a daemon that has been running.
		if got, err := countQuery(ctx, c, q.stmt); err != nil {
			return err
		} else if got != q.want {
			return fmt.Errorf("%s counted %d, want %d", q.stmt, got, q.want)
		}
		var rates []float64
		for range b.cfg.rounds {
			start := time.Now()
			if _, err := countQuery(ctx, c, q.stmt); err != nil {
				return err
			}
			rates = append(rates, float64(total)/time.Since(start).Seconds())
		}
		r := median(rates)
		var pass *bool
		if q.min > 0 {
			pass = ptr(r >= q.min)
		}
		b.add(q.label+fmt.Sprintf(" over %d events", total), q.target, rate(r)+fmt.Sprintf(" (%s per query)", ms(float64(total)/r)), pass)
	}
	return nil
}

func runStartup(ctx context.Context, b *bench, data string, n int) error {
	var starts, rss []float64
	for round := range b.cfg.rounds {
		d, err := b.newDaemon(data)
		if err != nil {
			return err
		}
		took, st, err := d.start(ctx)
		if err != nil {
			return err
		}
		if st.Audit.Events < int64(n) {
			return fmt.Errorf("daemon reports %d audit events, want at least %d", st.Audit.Events, n)
		}
		starts = append(starts, took.Seconds())
		// Idle RSS: measured on every other round, after a few idle seconds.
		if round < 3 {
			time.Sleep(3 * time.Second)
			kb, err := d.rssKB()
			if err != nil {
				return err
			}
			rss = append(rss, float64(kb)/1024)
		}
		if err := d.stop(syscall.SIGTERM); err != nil {
			return err
		}
		b.logf("start-up round %d: %s", round+1, ms(took.Seconds()))
	}
	s := median(starts)
	b.add(fmt.Sprintf("start-up to first status, %d events in the journal", n), "< 300 ms", ms(s), ptr(s < 0.3))

	// After a SIGKILL under write load: the WAL holds what was not flushed.
	var restarts []float64
	for round := range b.cfg.rounds {
		d, err := b.newDaemon(data)
		if err != nil {
			return err
		}
		if _, _, err := d.start(ctx); err != nil {
			return err
		}
		var acked int64
		var mu sync.Mutex
		loadCtx, stopLoad := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				c, err := client.Dial(loadCtx, d.Socket)
				if err != nil {
					return
				}
				defer c.Close()
				for i := 0; loadCtx.Err() == nil; i++ {
					if _, err := c.Do(loadCtx, fmt.Sprintf("emit bench.kill s%d i=%d", w, i)); err != nil {
						return
					}
					mu.Lock()
					acked++
					mu.Unlock()
				}
			})
		}
		time.Sleep(700 * time.Millisecond)
		if err := d.stop(syscall.SIGKILL); err != nil {
			stopLoad()
			return err
		}
		stopLoad()
		wg.Wait()
		d2, err := b.newDaemon(data)
		if err != nil {
			return err
		}
		took, _, err := d2.start(ctx)
		if err != nil {
			return err
		}
		restarts = append(restarts, took.Seconds())
		b.logf("restart after SIGKILL round %d (%d emits acknowledged before the kill): %s", round+1, acked, ms(took.Seconds()))
		if err := d2.stop(syscall.SIGTERM); err != nil {
			return err
		}
	}
	r := median(restarts)
	b.add("restart to first status after SIGKILL under write load", "< 300 ms", ms(r), ptr(r < 0.3))
	m := median(rss)
	b.add(fmt.Sprintf("idle daemon RSS (VmRSS, 3 s after start, %d events)", n), "< 60 MB", fmt.Sprintf("%.1f MiB", m), ptr(m < 60))
	return nil
}
