package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/journal"
)

const appendBatch = 1000

// emitBodies returns n bodies like those `emit bench.load sN i=…` records
// from 64 clients: the kind, a subject per client, the socket actor and one
// small integer of data.
func emitBodies(n int) []*journal.Body {
	out := make([]*journal.Body, n)
	for i := range out {
		out[i] = &journal.Body{
			Kind:    "bench.load",
			Subject: fmt.Sprintf("s%d", i%64),
			Actor:   journal.Actor{UID: 1000, GID: 1000, PID: 40000 + i%64, User: "bench", Comm: "cairnbench", Via: "socket"},
			Data:    map[string]any{"i": int64(i)},
		}
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pebbleQuiet is pebble's Logger, silent but for fatal errors.
type pebbleQuiet struct{}

func (pebbleQuiet) Infof(string, ...any)           {}
func (pebbleQuiet) Errorf(string, ...any)          {}
func (pebbleQuiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// The journal's keys (docs/events.md, "Storage"), rebuilt here so that raw
// pebble writes exactly the keys the journal writes.
func eventKey(dst []byte, seq int64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, "e/"...), uint64(seq))
}

func indexKey(dst []byte, prefix, name string, seq int64) []byte {
	dst = append(dst, prefix...)
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	return binary.BigEndian.AppendUint64(dst, uint64(seq))
}

// preparedEvent is one event as the journal stores it: the record bytes
// (header + CBOR body, hash chain computed) and its index names.
type preparedEvent struct {
	rec           []byte
	kind, subject string
}

// prepare encodes and chains bodies exactly as the journal's committer
// does, so that raw pebble is handed the same value bytes.
func prepare(bodies []*journal.Body, node string) ([]preparedEvent, error) {
	out := make([]preparedEvent, len(bodies))
	var prev journal.Hash
	now := time.Now().UnixNano()
	for i, b := range bodies {
		c := *b
		c.Node = node
		body, err := journal.EncodeBody(&c)
		if err != nil {
			return nil, err
		}
		seq := int64(i + 1)
		h := journal.ChainHash(journal.Audit, seq, now, prev, body)
		out[i] = preparedEvent{rec: journal.EncodeRecord(now, prev, h, body), kind: b.Kind, subject: b.Subject}
		prev = h
	}
	return out, nil
}

func openPebble(dir string) (*pebble.DB, error) {
	// The journal's own options: pebble's defaults but the newest format.
	return pebble.Open(dir, &pebble.Options{Logger: pebbleQuiet{}, FormatMajorVersion: pebble.FormatNewest})
}

// journalRound appends n events in batches through a fresh journal and
// returns events/s.
func journalRound(ctx context.Context, dir string, bodies []*journal.Body, n int) (float64, error) {
	j, err := journal.Open(journal.Options{Dir: dir, Logger: quietLogger(), Node: "bench-node"})
	if err != nil {
		return 0, err
	}
	defer j.Close()
	s := j.Stream(journal.Audit)
	start := time.Now()
	for done := 0; done < n; done += appendBatch {
		k := min(appendBatch, n-done)
		if _, err := s.Append(ctx, bodies[done%len(bodies):done%len(bodies)+k]...); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// pebbleRound writes the same keys and value bytes as journalRound (per
// event: the record under e/seq, the subject and kind index keys), in the
// same batch sizes, each batch committed with pebble.Sync. keys=1 writes
// the record only, the issue's own baseline.
func pebbleRound(dir string, evs []preparedEvent, n, keys int) (float64, error) {
	db, err := openPebble(dir)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var kbuf []byte
	start := time.Now()
	seq := int64(0)
	for done := 0; done < n; done += appendBatch {
		b := db.NewBatch()
		for i := range min(appendBatch, n-done) {
			seq++
			ev := &evs[(done+i)%len(evs)]
			kbuf = eventKey(kbuf[:0], seq)
			if err := b.Set(kbuf, ev.rec, nil); err != nil {
				return 0, err
			}
			if keys == 3 {
				kbuf = indexKey(kbuf[:0], "s/", ev.subject, seq)
				_ = b.Set(kbuf, nil, nil)
				kbuf = indexKey(kbuf[:0], "k/", ev.kind, seq)
				_ = b.Set(kbuf, nil, nil)
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return 0, err
		}
		_ = b.Close()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// pebbleSingleRound sets one event at a time with its own fsync, for at
// most maxDur, and returns events/s.
func pebbleSingleRound(dir string, evs []preparedEvent, maxN int, maxDur time.Duration) (float64, error) {
	db, err := openPebble(dir)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var kbuf []byte
	start := time.Now()
	n := 0
	for ; n < maxN && (n%32 != 0 || time.Since(start) < maxDur); n++ {
		kbuf = eventKey(kbuf[:0], int64(n+1))
		if err := db.Set(kbuf, evs[n%len(evs)].rec, pebble.Sync); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// journalConcurrentRound has 64 goroutines each appending one event at a
// time, in-process: the journal's group commit without the socket.
func journalConcurrentRound(ctx context.Context, dir string, bodies []*journal.Body, n int) (float64, float64, error) {
	j, err := journal.Open(journal.Options{Dir: dir, Logger: quietLogger(), Node: "bench-node"})
	if err != nil {
		return 0, 0, err
	}
	defer j.Close()
	s := j.Stream(journal.Audit)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	commits := atomic.Int64{}
	seen := sync.Map{}
	start := time.Now()
	for w := range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				c, err := s.Append(ctx, bodies[w])
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				// Events of one group share their commit time.
				if _, dup := seen.LoadOrStore(c[0].Time, true); !dup {
					commits.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if e := firstErr.Load(); e != nil {
		return 0, 0, *e
	}
	return float64(n) / el, float64(n) / float64(max(commits.Load(), 1)), nil
}

func runAppend(ctx context.Context, b *bench) error {
	n := 300_000
	single := 3000
	conc := 64 * 500
	if b.cfg.quick {
		n, single, conc = 50_000, 500, 64*100
	}
	bodies := emitBodies(appendBatch * 10)
	evs, err := prepare(bodies, "bench-node")
	if err != nil {
		return err
	}
	var jr, p3, p1, ratio, ps, jc, per []float64
	for round := range b.cfg.rounds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		dirs := make([]string, 4)
		for i := range dirs {
			if dirs[i], err = os.MkdirTemp(b.tmp, "append-"); err != nil {
				return err
			}
		}
		// Alternate which goes first, so neither always runs on a warmer
		// page cache or a quieter neighbour.
		var j, p float64
		runJ := func() (err error) { j, err = journalRound(ctx, dirs[0], bodies, n); return err }
		runP := func() (err error) { p, err = pebbleRound(dirs[1], evs, n, 3); return err }
		first, second := runJ, runP
		if round%2 == 1 {
			first, second = runP, runJ
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		p1r, err := pebbleRound(dirs[2], evs, n, 1)
		if err != nil {
			return err
		}
		jr, p3, p1, ratio = append(jr, j), append(p3, p), append(p1, p1r), append(ratio, j/p)
		psr, err := pebbleSingleRound(dirs[3], evs, single, time.Second)
		if err != nil {
			return err
		}
		ps = append(ps, psr)
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
		cd, err := os.MkdirTemp(b.tmp, "append-")
		if err != nil {
			return err
		}
		jcr, perCommit, err := journalConcurrentRound(ctx, cd, bodies, conc)
		_ = os.RemoveAll(cd)
		if err != nil {
			return err
		}
		jc, per = append(jc, jcr), append(per, perCommit)
		b.logf("append round %d: journal %s, pebble(3 keys) %s, ratio %.2f, pebble(1 key) %s, pebble single %s, journal 64 goroutines %s (%.0f events/commit)",
			round+1, rate(j), rate(p), j/p, rate(p1r), rate(psr), rate(jcr), perCommit)
	}
	r := median(ratio)
	b.add(fmt.Sprintf("journal Append, batches of %d, synced (encode + chain)", appendBatch), "", rate(median(jr)), nil)
	b.add("raw pebble, same 3 keys/event and bytes, same batches", "", rate(median(p3)), nil)
	b.add("journal / raw pebble (median of per-round ratios)", ">= 60%", fmt.Sprintf("%.0f%%", r*100), ptr(r >= 0.60))
	b.add("raw pebble, 1 key/event (the issue's baseline)", "", rate(median(p1)), nil)
	b.add("raw pebble, one Set+Sync per event, 1 writer", "", rate(median(ps)), nil)
	b.add("journal Append, 64 goroutines x 1 event (in-process)", "", fmt.Sprintf("%s, %.0f events/commit", rate(median(jc)), median(per)), nil)
	return nil
}
