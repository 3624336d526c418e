package capture

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// handSource is a source the test drives by hand: Start publishes its Emit
// in handEmit, or refuses with handRefuse.
type handSource struct{}

var (
	handMu     sync.Mutex
	handEmit   Emit
	handRefuse error
)

func init() { RegisterSource("hand", func() Source { return handSource{} }) }

func (handSource) Start(ctx context.Context, cfg SourceConfig, emit Emit) error {
	handMu.Lock()
	defer handMu.Unlock()
	if handRefuse != nil {
		return handRefuse
	}
	handEmit = emit
	return nil
}

func (handSource) Stop() error { return nil }

func handEmitter(t testing.TB) Emit {
	t.Helper()
	handMu.Lock()
	defer handMu.Unlock()
	if handEmit == nil {
		t.Fatal("hand source not started")
	}
	return handEmit
}

// countingAppender counts appends and can hold them until released.
type countingAppender struct {
	out  Appender
	mu   sync.Mutex
	hold chan struct{} // nil: never hold
	// sizes of the appends, in order
	sizes []int
}

func (c *countingAppender) Append(ctx context.Context, bodies ...*journal.Body) ([]journal.Committed, error) {
	c.mu.Lock()
	hold := c.hold
	c.sizes = append(c.sizes, len(bodies))
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return c.out.Append(ctx, bodies...)
}

func openJournal(t *testing.T) *journal.Journal {
	t.Helper()
	j, err := journal.Open(journal.Options{Dir: "data", FS: vfs.NewMem(), Node: "test", Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func scan(t *testing.T, j *journal.Journal, kind string) []*journal.Event {
	t.Helper()
	it := j.Stream(journal.Capture).Scan(journal.Query{Kind: kind})
	defer it.Close()
	var evs []*journal.Event
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func body(n int64, name string, pid int64) *journal.Body {
	return &journal.Body{
		Kind: "capture.test", Actor: journal.Actor{Via: "system"},
		Evt:  &journal.Evt{Type: "test", Num: n},
		Proc: &journal.Proc{Name: name, PID: pid},
	}
}

func startHand(t testing.TB, p *Pipeline, o RunOptions) Emit {
	t.Helper()
	handMu.Lock()
	handEmit, handRefuse = nil, nil
	handMu.Unlock()
	if err := p.Start("hand", o); err != nil {
		t.Fatal(err)
	}
	return handEmitter(t)
}

// TestBatchingAndStopDrains checks that every accepted event reaches the
// journal by the time Stop answers, in batches no larger than MaxBatch.
func TestBatchingAndStopDrains(t *testing.T) {
	j := openJournal(t)
	ca := &countingAppender{out: j.Stream(journal.Capture)}
	p := NewPipeline(ca, PipelineOptions{Buffer: 20000, MaxBatch: 512, SelfPID: 1, Logger: quietLog})
	defer p.Close()
	emit := startHand(t, p, RunOptions{})
	const n = 10000
	for i := int64(1); i <= n; i++ {
		if !emit(body(i, "x", 100)) {
			t.Fatalf("event %d dropped with a buffer of 20000", i)
		}
	}
	stopped, err := p.Stop("hand")
	if err != nil || len(stopped) != 1 {
		t.Fatalf("Stop = %v, %v", stopped, err)
	}
	evs := scan(t, j, "capture.test")
	if len(evs) != n {
		t.Fatalf("%d events in the journal after Stop, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if ev.Evt.Num != int64(i+1) {
			t.Fatalf("event %d has num %d: order lost", i, ev.Evt.Num)
		}
		if ev.Container == nil || ev.Container.ID != "host" {
			t.Fatalf("event %d container = %+v, want host", i, ev.Container)
		}
		if ev.Node != "test" {
			t.Fatalf("event node = %q, want the journal's", ev.Node)
		}
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	total := 0
	for _, s := range ca.sizes {
		if s > 512 {
			t.Errorf("an append of %d bodies, want at most 512", s)
		}
		total += s
	}
	if total != n || len(ca.sizes) >= n/2 {
		t.Errorf("%d appends for %d bodies (sum %d): not batched", len(ca.sizes), n, total)
	}
	st := statusOf(t, p, "hand")
	if st.Running || st.Events != n || st.Drops != 0 {
		t.Errorf("status = %+v, want stopped with %d events and no drops", st, n)
	}
}

func statusOf(t testing.TB, p *Pipeline, name string) Status {
	t.Helper()
	for _, s := range p.Status() {
		if s.Source == name {
			return s
		}
	}
	t.Fatalf("no status row for %s", name)
	return Status{}
}

// TestOverflowDropsAndRecords fills a tiny buffer while the journal is
// held: Emit never blocks, the overflow is counted, and a capture.drop
// event records exactly how many were lost.
func TestOverflowDropsAndRecords(t *testing.T) {
	j := openJournal(t)
	hold := make(chan struct{})
	ca := &countingAppender{out: j.Stream(journal.Capture), hold: hold}
	p := NewPipeline(ca, PipelineOptions{Buffer: 8, MaxBatch: 4, SelfPID: 1, DropEvery: 10 * time.Millisecond, Logger: quietLog})
	defer p.Close()
	emit := startHand(t, p, RunOptions{})
	accepted, dropped := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= 1000; i++ {
			if emit(body(i, "x", 100)) {
				accepted++
			} else {
				dropped++
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a full buffer")
	}
	if dropped == 0 {
		t.Fatalf("no drops with a buffer of 8 and the journal held (accepted %d)", accepted)
	}
	if st := statusOf(t, p, "hand"); st.Drops != int64(dropped) || st.Events != int64(accepted) {
		t.Errorf("status = %+v, want %d events and %d drops", st, accepted, dropped)
	}
	close(hold)
	ca.mu.Lock()
	ca.hold = nil
	ca.mu.Unlock()
	if _, err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(scan(t, j, "capture.test")); got != accepted {
		t.Errorf("%d events stored, want the %d accepted", got, accepted)
	}
	var recorded int64
	for _, ev := range scan(t, j, DropKind) {
		if ev.Data["source"] != "hand" {
			t.Errorf("capture.drop data = %v, want source hand", ev.Data)
		}
		n, ok := ev.Data["count"].(int64)
		if !ok {
			if u, ok2 := ev.Data["count"].(uint64); ok2 {
				n, ok = int64(u), true
			}
		}
		if !ok || n <= 0 {
			t.Fatalf("capture.drop count = %#v", ev.Data["count"])
		}
		recorded += n
	}
	if recorded != int64(dropped) {
		t.Errorf("capture.drop events record %d, want %d", recorded, dropped)
	}
}

// TestFilterBeforeJournal checks that only matching events are stored,
// that the daemon's own events are left out, and that include-self keeps
// them.
func TestFilterBeforeJournal(t *testing.T) {
	j := openJournal(t)
	p := NewPipeline(j.Stream(journal.Capture), PipelineOptions{SelfPID: 42, Logger: quietLog})
	defer p.Close()
	f, err := filter.Compile(`proc.name == "nginx"`)
	if err != nil {
		t.Fatal(err)
	}
	emit := startHand(t, p, RunOptions{Filter: f})
	emit(body(1, "nginx", 100))
	emit(body(2, "sshd", 101))
	emit(body(3, "nginx", 42)) // the daemon itself
	emit(body(4, "nginx", 102))
	if _, err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	evs := scan(t, j, "capture.test")
	if len(evs) != 2 || evs[0].Evt.Num != 1 || evs[1].Evt.Num != 4 {
		t.Fatalf("stored %d events %+v, want events 1 and 4", len(evs), evs)
	}
	if st := statusOf(t, p, "hand"); st.Events != 2 {
		t.Errorf("status events = %d, want 2 (filtered events take no room)", st.Events)
	}

	emit = startHand(t, p, RunOptions{IncludeSelf: true})
	emit(body(5, "cairn", 42))
	if _, err := p.Stop("hand"); err != nil {
		t.Fatal(err)
	}
	if evs := scan(t, j, "capture.test"); len(evs) != 3 || evs[2].Proc.PID != 42 {
		t.Fatalf("include-self: stored %d events, want the daemon's own as the third", len(evs))
	}
}

// TestStartErrors checks a source that refuses and a source already running.
func TestStartErrors(t *testing.T) {
	j := openJournal(t)
	p := NewPipeline(j.Stream(journal.Capture), PipelineOptions{Logger: quietLog})
	defer p.Close()

	handMu.Lock()
	handRefuse = errors.New("needs root")
	handMu.Unlock()
	err := p.Start("hand", RunOptions{})
	if wire.CodeOf(err) != wire.FailedPrecondition || p.Running("hand") {
		t.Fatalf("refusing source: err %v (code %s), running %v", err, wire.CodeOf(err), p.Running("hand"))
	}
	startHand(t, p, RunOptions{})
	if err := p.Start("hand", RunOptions{}); wire.CodeOf(err) != wire.FailedPrecondition || !errors.Is(err, err) {
		t.Fatalf("second start: %v, want failed_precondition", err)
	}
	if err := p.Start("nope", RunOptions{}); wire.CodeOf(err) != wire.InvalidArgument {
		t.Fatalf("unknown source: %v, want invalid_argument", err)
	}
	if _, err := p.Stop("synthetic"); wire.CodeOf(err) != wire.FailedPrecondition {
		t.Fatalf("stop of a source not running: %v", err)
	}
}

// TestSyntheticStops checks that the synthetic source runs, is stopped and
// leaves everything it emitted in the journal.
func TestSyntheticStops(t *testing.T) {
	j := openJournal(t)
	p := NewPipeline(j.Stream(journal.Capture), PipelineOptions{Buffer: 4096, Logger: quietLog})
	if err := p.Start("synthetic", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := p.Stop("synthetic"); err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, p, "synthetic")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := int64(len(scan(t, j, "capture.synthetic"))); got != st.Events || got == 0 {
		t.Fatalf("%d synthetic events stored, status says %d accepted", got, st.Events)
	}
}

func TestSyntheticRateNeverRunsAhead(t *testing.T) {
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	s := &synthetic{}
	start := time.Now()
	if err := s.Start(ctx, SourceConfig{Rate: 5000}, func(*journal.Body) bool { n.Add(1); return true }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	s.wg.Wait()
	el := time.Since(start).Seconds()
	got := n.Load()
	if got == 0 || float64(got) > 5000*el+1 {
		t.Fatalf("%d events in %.3fs at rate=5000", got, el)
	}
}
