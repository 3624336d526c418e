package journal

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// gateEngine's Fold waits for its gate at the first test.gated event: it
// holds the committer in a build while the test queues what should follow.
// It counts the test.gated events it folds.
type gateEngine struct {
	entered chan struct{}
	gate    chan struct{}
	once    *atomic.Bool
	folds   *atomic.Int32
}

func (gateEngine) Name() string { return "gate" }

func (gateEngine) Decide(v *View, req any) (Decision, error) { return Decision{}, nil }

func (g gateEngine) Fold(t *Txn, ev *Event) error {
	if ev.Kind != "test.gated" {
		return nil
	}
	g.folds.Add(1)
	if g.once.CompareAndSwap(false, true) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return nil
}

// Modes of pipelineSetup's WAL syncs.
const (
	syncPass = iota
	syncHold // until release is closed
	syncFail
)

// pipelineSetup opens a stream (on a file system that can be crashed,
// closed when the test ends) whose WAL syncs pass, wait for release, or
// fail as mode says, with one durable event, and starts a gated append:
// the committer is left building its group (entered received), so what
// the test queues next forms the group after it. first receives the
// gated append's result.
func pipelineSetup(t *testing.T, mode *atomic.Int32, release chan struct{}) (s *Stream, mem *vfs.MemFS, g gateEngine, first chan result) {
	t.Helper()
	mem = vfs.NewCrashableMem()
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !isWAL(op) || !isSync(op) {
			return nil
		}
		switch mode.Load() {
		case syncHold:
			<-release
		case syncFail:
			return errorfs.ErrInjected
		}
		return nil
	}))
	g = gateEngine{entered: make(chan struct{}), gate: make(chan struct{}), once: new(atomic.Bool), folds: new(atomic.Int32)}
	opts := testOptions(fs)
	opts.Engines = map[string][]Engine{Audit: {g}}
	j := mustOpen(t, opts)
	t.Cleanup(func() {
		mode.Store(syncPass) // the other streams flush at Close
		_ = j.Close()
	})
	s = j.Stream(Audit)
	mustAppend(t, s, body("test.emit", "a", nil)) // seq 1, durable
	first = make(chan result, 1)
	go func() {
		c, err := s.Append(context.Background(), body("test.gated", "g", nil))
		first <- result{c, err}
	}()
	within(t, g.entered, "the gated append's build")
	return s, mem, g, first
}

type result struct {
	c   []Committed
	err error
}

// within receives from ch, or fails the test after 5 s.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing after 5 s", what)
		panic("unreachable")
	}
}

// queued waits until n requests wait in the committer's queue.
func queued(t *testing.T, s *Stream, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(s.reqs) != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(s.reqs), n)
		}
	}
}

// failFirstGroup waits for the request queued behind the gated group,
// makes that group's fsync fail and lets it go on, and checks it fails.
func failFirstGroup(t *testing.T, s *Stream, mode *atomic.Int32, g gateEngine, first chan result) {
	t.Helper()
	queued(t, s, 1)
	mode.Store(syncFail)
	close(g.gate)
	if r := within(t, first, "first group"); r.err == nil {
		t.Fatal("first group acknowledged despite its failed fsync")
	}
}

// TestPipelinedAppendsWaitForTheGroupBefore: a group of appends is built
// while the group before it is being made durable, and answered only after
// it; neither is visible before its fsync returns.
func TestPipelinedAppendsWaitForTheGroupBefore(t *testing.T) {
	var mode atomic.Int32
	release := make(chan struct{})
	s, _, g, first := pipelineSetup(t, &mode, release)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { mode.Store(syncPass); close(release) }) }
	defer unblock() // before the cleanup's Close, which waits for a held commit

	second := make(chan result, 1)
	go func() {
		c, err := s.Append(context.Background(), body("test.emit", "b", nil))
		second <- result{c, err}
	}()
	queued(t, s, 1)      // behind the first group
	mode.Store(syncHold) // the first group's fsync waits for release
	close(g.gate)
	queued(t, s, 0) // taken, and built, while that fsync is held
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
	a, b := within(t, first, "first group"), within(t, second, "second group")
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
// before fails, the group built on it is not acknowledged, and a crash
// image (unsynced writes lost) holds neither.
func TestPipelinedAppendsFailWithTheGroupBefore(t *testing.T) {
	var mode atomic.Int32
	s, mem, g, first := pipelineSetup(t, &mode, nil)
	second := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), body("test.emit", "b", nil))
		second <- err
	}()
	failFirstGroup(t, s, &mode, g, first)
	if err := within(t, second, "second group"); err == nil {
		t.Fatal("append acknowledged though the group it was built on failed")
	}
	if d := s.DurableSeq(); d != 1 {
		t.Fatalf("durable %d after the failure", d)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	cj := mustOpen(t, testOptions(crashed))
	defer cj.Close()
	raws := collect(t, cj.Stream(Audit).Scan(Query{}))
	checkChain(t, raws, 1)
	if len(raws) != 1 {
		t.Fatalf("the crash image holds %d events, want the 1 acknowledged", len(raws))
	}
}

// TestRebuildAfterFailedPipelinedGroup: a rebuild queued behind a group of
// appends whose fsync fails does not run on that group's undurable events;
// it fails with the stream.
func TestRebuildAfterFailedPipelinedGroup(t *testing.T) {
	var mode atomic.Int32
	s, _, g, first := pipelineSetup(t, &mode, nil)
	rebuilt := make(chan error, 1)
	go func() { rebuilt <- s.Rebuild(context.Background()) }()
	failFirstGroup(t, s, &mode, g, first)
	if err := within(t, rebuilt, "rebuild"); err == nil || !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("rebuild after the failed group: %v, want the stream's write error", err)
	}
	if n := g.folds.Load(); n != 1 {
		t.Fatalf("the failed group's event was folded %d times, want once (by its own build)", n)
	}
}
