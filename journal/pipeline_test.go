package journal

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// gateEngine's Fold waits for its gate at the first test.gated event: it
// holds the committer in a build while the test queues what should follow.
type gateEngine struct {
	entered chan struct{}
	gate    chan struct{}
	once    *atomic.Bool
}

func (gateEngine) Name() string { return "gate" }

func (gateEngine) Decide(v *View, req any) (Decision, error) { return Decision{}, nil }

func (g gateEngine) Fold(t *Txn, ev *Event) error {
	if ev.Kind == "test.gated" && g.once.CompareAndSwap(false, true) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return nil
}

// pipelineSetup opens a stream whose WAL syncs wait for a release, or
// fail, while the returned mode says so, and holds its committer building
// a group of appends; appends queued meanwhile form the group after it.
func pipelineSetup(t *testing.T, mode *atomic.Int32, release chan struct{}) (*Stream, *Journal, *vfs.MemFS, gateEngine) {
	t.Helper()
	mem := vfs.NewMem()
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !isWAL(op) || !isSync(op) {
			return nil
		}
		switch mode.Load() {
		case 1:
			<-release
		case 2:
			return errorfs.ErrInjected
		}
		return nil
	}))
	g := gateEngine{entered: make(chan struct{}), gate: make(chan struct{}), once: new(atomic.Bool)}
	opts := testOptions(fs)
	opts.Engines = map[string][]Engine{Audit: {g}}
	j := mustOpen(t, opts)
	s := j.Stream(Audit)
	mustAppend(t, s, body("test.emit", "a", nil)) // seq 1, durable
	return s, j, mem, g
}

// TestPipelinedAppendsWaitForTheGroupBefore: a group of appends is built
// while the group before it is being made durable, and answered only after
// it; neither is visible before its fsync returns.
func TestPipelinedAppendsWaitForTheGroupBefore(t *testing.T) {
	var mode atomic.Int32
	release := make(chan struct{})
	s, j, _, g := pipelineSetup(t, &mode, release)
	defer j.Close()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { mode.Store(0); close(release) }) }
	defer unblock() // before Close, which waits for a held commit
	ctx := context.Background()

	type result struct {
		c   []Committed
		err error
	}
	first := make(chan result, 1)
	go func() {
		c, err := s.Append(ctx, body("test.gated", "g", nil))
		first <- result{c, err}
	}()
	<-g.entered // the committer is building the first group
	second := make(chan result, 1)
	go func() {
		c, err := s.Append(ctx, body("test.emit", "b", nil))
		second <- result{c, err}
	}()
	for len(s.reqs) == 0 { // the append is queued behind the first group
		time.Sleep(time.Millisecond)
	}
	mode.Store(1) // the first group's fsync waits for release
	close(g.gate)
	// The committer takes the append and builds it during that fsync.
	for deadline := time.Now().Add(5 * time.Second); len(s.reqs) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the append was not taken while the group before it synced")
		}
	}
	select {
	case r := <-first:
		t.Fatalf("first group answered before its fsync returned: %+v", r)
	case r := <-second:
		t.Fatalf("append answered before the group before it was durable: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	if d := s.DurableSeq(); d != 1 {
		t.Fatalf("durable %d while the first group syncs", d)
	}
	unblock()
	a, b := <-first, <-second
	if a.err != nil || b.err != nil || len(a.c) != 1 || len(b.c) != 1 {
		t.Fatalf("first %+v, second %+v", a, b)
	}
	if a.c[0].Seq != 2 || b.c[0].Seq != 3 {
		t.Fatalf("seqs %d and %d, want 2 and 3", a.c[0].Seq, b.c[0].Seq)
	}
	raws := collect(t, s.Scan(Query{}))
	checkChain(t, raws, 1)
	if len(raws) != 3 || raws[2].Hash() != b.c[0].Hash {
		t.Fatalf("stored %d events", len(raws))
	}
}

// TestPipelinedAppendsFailWithTheGroupBefore: when the fsync of the group
// before fails, the group built on it is not written or acknowledged, and
// a restart finds neither.
func TestPipelinedAppendsFailWithTheGroupBefore(t *testing.T) {
	var mode atomic.Int32
	release := make(chan struct{})
	s, j, mem, g := pipelineSetup(t, &mode, release)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, body("test.gated", "g", nil))
		first <- err
	}()
	<-g.entered
	second := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, body("test.emit", "b", nil))
		second <- err
	}()
	for len(s.reqs) == 0 {
		time.Sleep(time.Millisecond)
	}
	mode.Store(2) // the first group's fsync fails
	close(g.gate)
	if err := <-first; err == nil {
		t.Fatal("first group acknowledged despite its failed fsync")
	}
	if err := <-second; err == nil {
		t.Fatal("append acknowledged though the group it was built on failed")
	}
	if d := s.DurableSeq(); d != 1 {
		t.Fatalf("durable %d after the failure", d)
	}
	mode.Store(0)
	_ = j.Close()
	j = mustOpen(t, testOptions(mem))
	defer j.Close()
	raws := collect(t, j.Stream(Audit).Scan(Query{}))
	checkChain(t, raws, 1)
	for _, r := range raws[1:] {
		if k, _, _ := peekEnvelope(r.Body()); string(k) == "test.emit" {
			t.Fatalf("seq %d, the failed append, was written", r.Seq)
		}
	}
}
