package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairnhq/cairn/client"
)

// latencies collects now − event.time for the events one reader receives.
type latencies struct {
	mu   sync.Mutex
	lat  []float64 // seconds
	bad  int
	seen atomic.Int64
}

// record takes the receive time first, then reads the event's commit time
// and kind. The readers share two cores with the daemon, so they read
// the two fields where an event's JSON puts them (stream, seq, time, kind
// lead every event) rather than decoding the whole event: the harness's
// own CPU is not the daemon's figure.
func (l *latencies) record(event []byte) {
	now := time.Now()
	kind, at, ok := eventKindTime(event)
	if !ok {
		l.mu.Lock()
		l.bad++
		l.mu.Unlock()
		return
	}
	ev := struct {
		Kind string
		Time time.Time
	}{kind, at}
	if ev.Kind != "bench.load" {
		l.seen.Add(1) // warm-up events count as seen but are not measured
		return
	}
	l.mu.Lock()
	l.lat = append(l.lat, now.Sub(ev.Time).Seconds())
	l.mu.Unlock()
	l.seen.Add(1)
}

// eventKindTime reads the top-level "time" and "kind" of an event's JSON,
// the first of each: they precede "data", where a field of the same name
// could appear.
func eventKindTime(event []byte) (kind string, at time.Time, ok bool) {
	field := func(name string) (string, bool) {
		key := `"` + name + `":"`
		i := bytes.Index(event, []byte(key))
		if i < 0 {
			return "", false
		}
		rest := event[i+len(key):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return "", false
		}
		return string(rest[:j]), true
	}
	ts, ok1 := field("time")
	kind, ok2 := field("kind")
	if !ok1 || !ok2 {
		return "", time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	return kind, at, err == nil
}

func (l *latencies) take() []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lat
	l.lat = nil
	return out
}

// waitSeen waits until n events have been received, or timeout.
func (l *latencies) waitSeen(n int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for l.seen.Load() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// emitLoad has every client send one emit at a time, waiting for its
// acknowledgement, perClient times; it returns events/s.
func emitLoad(ctx context.Context, clients []*client.Client, perClient, base int) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	start := time.Now()
	for ci, c := range clients {
		wg.Go(func() {
			for i := range perClient {
				if _, err := c.Do(ctx, fmt.Sprintf("emit bench.load s%d i=%d", ci, base+i)); err != nil {
					errs <- fmt.Errorf("client %d: %w", ci, err)
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(len(clients)*perClient) / el, nil
}

// runLoad starts the real daemon and measures 64 socket clients emitting,
// with one tail stream and one NATS subscriber measuring commit → delivery.
func runLoad(ctx context.Context, b *bench) error {
	const nClients = 64
	perClient := 500
	if b.cfg.quick {
		perClient = 100
	}
	data := filepath.Join(b.tmp, "load-data")
	d, err := b.newDaemon(data)
	if err != nil {
		return err
	}
	d.profileAs("load")
	_, st, err := d.start(ctx)
	if err != nil {
		return err
	}
	defer d.stop(syscall.SIGTERM)

	clients := make([]*client.Client, nClients)
	for i := range clients {
		if clients[i], err = client.Dial(ctx, d.Socket); err != nil {
			return err
		}
		defer clients[i].Close()
	}

	// The tail reader, on a connection of its own.
	tc, err := client.Dial(ctx, d.Socket)
	if err != nil {
		return err
	}
	defer tc.Close()
	tailCtx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	tail, err := tc.Stream(tailCtx, "tail kind=bench.*")
	if err != nil {
		return err
	}
	var tailLat, natsLat latencies
	tailDone := make(chan error, 1)
	go func() {
		for {
			a, err := tail.Next()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				tailDone <- err
				return
			}
			if a.Event != nil {
				tailLat.record(a.Event)
			}
		}
	}()

	// The NATS subscriber, with the daemon's token.
	tok, err := os.ReadFile(filepath.Join(data, "nats.token"))
	if err != nil {
		return fmt.Errorf("read NATS token: %w", err)
	}
	nc, err := nats.Connect(st.NATS, nats.Token(strings.TrimSpace(string(tok))), nats.Name("cairnbench"))
	if err != nil {
		return fmt.Errorf("connect to the daemon's NATS at %s: %w", st.NATS, err)
	}
	defer nc.Close()
	sub, err := nc.Subscribe("cairn.audit.bench.>", func(m *nats.Msg) { natsLat.record(m.Data) })
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return err
	}

	// Warm up until both readers see events, so the rounds measure steady state.
	if _, err := clients[0].Do(ctx, "emit bench.warmup w"); err != nil {
		return err
	}
	if !tailLat.waitSeen(1, 10*time.Second) || !natsLat.waitSeen(1, 10*time.Second) {
		return fmt.Errorf("tail or NATS subscriber saw no warm-up event within 10s")
	}
	if _, err := emitLoad(ctx, clients, perClient/5, 0); err != nil {
		return err
	}
	expect := 1 + int64(nClients*(perClient/5))
	if !tailLat.waitSeen(expect, 20*time.Second) || !natsLat.waitSeen(expect, 20*time.Second) {
		return fmt.Errorf("warm-up: tail saw %d, NATS %d of %d events", tailLat.seen.Load(), natsLat.seen.Load(), expect)
	}
	tailLat.take()
	natsLat.take()

	var rates, t50, t99, n50, n99 []float64
	for round := range b.cfg.rounds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := emitLoad(ctx, clients, perClient, (round+1)*perClient)
		if err != nil {
			return err
		}
		expect += int64(nClients * perClient)
		if !tailLat.waitSeen(expect, 30*time.Second) || !natsLat.waitSeen(expect, 30*time.Second) {
			return fmt.Errorf("round %d: tail saw %d, NATS %d of %d events", round+1, tailLat.seen.Load(), natsLat.seen.Load(), expect)
		}
		tl, nl := tailLat.take(), natsLat.take()
		rates = append(rates, r)
		t50, t99 = append(t50, percentile(tl, 50)), append(t99, percentile(tl, 99))
		n50, n99 = append(n50, percentile(nl, 50)), append(n99, percentile(nl, 99))
		b.logf("load round %d: %s; tail p50 %s p99 %s; NATS p50 %s p99 %s", round+1, rate(r),
			ms(t50[round]), ms(t99[round]), ms(n50[round]), ms(n99[round]))
	}
	if tailLat.bad+natsLat.bad > 0 {
		return fmt.Errorf("%d tail and %d NATS messages were not event JSON", tailLat.bad, natsLat.bad)
	}
	r := median(rates)
	b.add(fmt.Sprintf("64 socket clients, 1 emit each in flight (%dx%d/round)", nClients, perClient), ">= 25k events/s", rate(r), ptr(r >= 25000))
	tp, np := median(t99), median(n99)
	b.add("commit -> tail subscriber, under that load", "p99 < 5 ms",
		fmt.Sprintf("p50 %s, p99 %s (worst round p99 %s)", ms(median(t50)), ms(tp), ms(slicesMax(t99))), ptr(tp < 5e-3))
	b.add("commit -> NATS subscriber, under that load", "p99 < 5 ms",
		fmt.Sprintf("p50 %s, p99 %s (worst round p99 %s)", ms(median(n50)), ms(np), ms(slicesMax(n99))), ptr(np < 5e-3))

	stopTail()
	select {
	case err := <-tailDone:
		if err != nil && ctx.Err() == nil && !isCanceled(err) {
			b.logf("tail ended: %v", err)
		}
	case <-time.After(5 * time.Second):
	}

	// The same load with nobody reading: what the two readers cost the writers.
	if err := sub.Unsubscribe(); err != nil {
		return err
	}
	var bare []float64
	for round := range min(b.cfg.rounds, 3) {
		r, err := emitLoad(ctx, clients, perClient, (b.cfg.rounds+round+1)*perClient)
		if err != nil {
			return err
		}
		bare = append(bare, r)
	}
	b.add("64 socket clients, no tail and no NATS subscriber", "", rate(median(bare)), nil)
	return nil
}

func slicesMax(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func isCanceled(err error) bool {
	var de *client.DaemonError
	return errors.As(err, &de) && de.Code == "canceled"
}
