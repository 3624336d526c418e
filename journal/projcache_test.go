package journal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// oracleEngine reads and writes a few keys at random and checks every read
// it makes through the View (and so through the projection cache) against
// the batch it is built in, read directly: pebble is the oracle.
type oracleEngine struct {
	mu         sync.Mutex
	mismatches []string
	reads      int
}

// oracleReq is a request: keys Decide reads, then the ops its event folds.
type oracleReq struct {
	Reads []string
	Ops   []any // each [op, key, (value | range end)]
	Fail  bool  // the event fails to fold
}

func (*oracleEngine) Name() string { return "oracle" }

func (o *oracleEngine) check(v *View, key string) error {
	got, gotOK, err := v.Get([]byte(key))
	if err != nil {
		return err
	}
	want, wantOK, err := readerGet(v.r, append(append([]byte(nil), v.prefix...), key...))
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads++
	if gotOK != wantOK || !bytes.Equal(got, want) || (got == nil) != (want == nil) {
		o.mismatches = append(o.mismatches, fmt.Sprintf("%s: view %q %v, batch %q %v", key, got, gotOK, want, wantOK))
	}
	return nil
}

func (o *oracleEngine) Decide(v *View, req any) (Decision, error) {
	r := req.(oracleReq)
	for _, k := range r.Reads {
		if err := o.check(v, k); err != nil {
			return Decision{}, err
		}
	}
	subject := "ok"
	if r.Fail {
		subject = "fail"
	}
	return Decision{Bodies: []*Body{body("oracle.ops", subject, map[string]any{"ops": r.Ops})}}, nil
}

func (o *oracleEngine) Fold(t *Txn, ev *Event) error {
	if ev.Kind != "oracle.ops" {
		return nil
	}
	ops, _ := ev.Data["ops"].([]any)
	for i, x := range ops {
		op, _ := x.([]any)
		name, key := op[0].(string), op[1].(string)
		var err error
		switch name {
		case "get":
			err = o.check(&t.View, key)
		case "set":
			err = t.Set([]byte(key), []byte(op[2].(string)))
		case "del":
			err = t.Delete([]byte(key))
		case "delrange":
			err = t.DeleteRange([]byte(key), []byte(op[2].(string)))
		}
		if err != nil {
			return err
		}
		// A failing event fails after some of its writes, which the
		// rebuilt batch must not show.
		if ev.Subject == "fail" && i == len(ops)/2 {
			return fmt.Errorf("refused to fold")
		}
	}
	return nil
}

func randomOracleReq(rng *rand.Rand, n int) oracleReq {
	// Two subspaces (p/oracle/j, p/oracle/k), and ranges within one or
	// across both.
	key := func() string { return fmt.Sprintf("%c%02d", "jk"[rng.IntN(2)], rng.IntN(24)) }
	var r oracleReq
	for range rng.IntN(3) {
		r.Reads = append(r.Reads, key())
	}
	for range 1 + rng.IntN(6) {
		switch p := rng.IntN(20); {
		case p < 7:
			r.Ops = append(r.Ops, []any{"get", key()})
		case p < 15:
			v := fmt.Sprintf("v%d-%s", n, bytes.Repeat([]byte("x"), rng.IntN(40)))
			if rng.IntN(8) == 0 {
				v = "" // an empty value reads back as pebble reads it: nil
			}
			r.Ops = append(r.Ops, []any{"set", key(), v})
		case p < 19:
			r.Ops = append(r.Ops, []any{"del", key()})
		default:
			lo, hi := key(), key()
			if rng.IntN(4) > 0 {
				hi = lo[:1] + hi[1:] // within one subspace
			}
			if hi < lo {
				lo, hi = hi, lo
			}
			r.Ops = append(r.Ops, []any{"delrange", lo, hi})
		}
	}
	r.Fail = rng.IntN(10) == 0
	return r
}

// TestProjectionCacheOracle: whatever the cache holds or evicts, through
// concurrent groups, folds that fail half-way (the batch is built again
// without them), range deletes and a rebuild, every read an engine makes
// equals pebble's read of the batch, and what the cache keeps is what
// pebble stores.
func TestProjectionCacheOracle(t *testing.T) {
	for _, limit := range []int{400, 1 << 20} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			eng := &oracleEngine{}
			opts := testOptions(vfs.NewMem())
			opts.Engines = map[string][]Engine{Audit: {eng}}
			opts.ProjectionCache = limit
			j := mustOpen(t, opts)
			defer j.Close()
			s := j.Stream(Audit)
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(limit), uint64(w)))
					for i := range 300 {
						if w == 0 && i == 150 {
							if err := s.Rebuild(context.Background()); err != nil {
								t.Errorf("rebuild: %v", err)
							}
						}
						r := randomOracleReq(rng, i)
						_, _, err := s.Propose(context.Background(), "oracle", r)
						if (err != nil) != r.Fail {
							t.Errorf("propose (fail %v): %v", r.Fail, err)
						}
					}
				})
			}
			wg.Wait()
			if len(eng.mismatches) > 0 {
				t.Fatalf("%d of %d reads differ from pebble, first: %s", len(eng.mismatches), eng.reads, eng.mismatches[0])
			}
			if s.commits.Load() >= 4*300 {
				t.Errorf("no request shared a group: the test does not cover reads within a group")
			}
			// The committer is idle: the cache is its to read no more.
			c := s.pcache
			if c.bytes > limit {
				t.Errorf("cache holds %d bytes, over its limit %d", c.bytes, limit)
			}
			for k, v := range c.m {
				val, ok, err := readerGet(s.db, []byte(k))
				if err != nil {
					t.Fatal(err)
				}
				if ok != v.ok || !bytes.Equal(val, v.val) {
					t.Errorf("cache %s = %q %v, stored %q %v", k, v.val, v.ok, val, ok)
				}
			}
			subs := map[string]int{}
			for k := range c.m {
				subs[subspaceOf(k)]++
			}
			if fmt.Sprint(subs) != fmt.Sprint(c.subs) {
				t.Errorf("subspace counts %v, the cache holds %v", c.subs, subs)
			}
			t.Logf("%d reads checked, %d keys cached (%d bytes)", eng.reads, len(c.m), c.bytes)
		})
	}
}
