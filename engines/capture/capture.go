package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// Defaults of the pipeline.
const (
	// DefaultBuffer is how many events the pipeline holds between the
	// sources and the journal before it drops.
	DefaultBuffer = 65536
	// MaxBatch is the most bodies one append to the capture stream carries.
	MaxBatch = 4096
	// DropKind is the kind of the event that records dropped events.
	DropKind = "capture.drop"
)

// Describer is a Source that says in one line what it observes, for
// `capture sources`. It is optional so that source.go stays as it is.
type Describer interface {
	Description() string
}

// Appender is where the pipeline writes: the capture stream of the journal,
// as *journal.Stream provides it.
type Appender interface {
	Append(ctx context.Context, bodies ...*journal.Body) ([]journal.Committed, error)
}

// PipelineOptions configures NewPipeline.
type PipelineOptions struct {
	// Buffer is the capacity of the buffer between sources and the journal
	// (default DefaultBuffer).
	Buffer int
	// MaxBatch caps the bodies of one append (default MaxBatch).
	MaxBatch int
	// SelfPID is the daemon's pid: events whose proc.pid is SelfPID are
	// left out unless a run asks for them (default os.Getpid()).
	SelfPID int64
	// DropEvery is the least time between two capture.drop events of one
	// source (default 1s).
	DropEvery time.Duration
	Logger    *slog.Logger
}

// RunOptions are the choices of one `capture start`.
type RunOptions struct {
	Config      SourceConfig
	Filter      *filter.Filter // nil: every event
	IncludeSelf bool
}

// Pipeline carries events from the running sources to the capture stream
// through one bounded buffer, and owns the sources it started.
type Pipeline struct {
	out      Appender
	buf      chan item
	maxBatch int
	self     int64
	dropGap  time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	runs map[string]*run // by source name, the running ones and the last stopped

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	quit      chan struct{}
	ctx       context.Context
	stop      context.CancelFunc
}

// item is one entry of the buffer: an event of a run, or a flush marker.
type item struct {
	run   *run
	body  *journal.Body
	flush chan struct{}
}

// run is one started source.
type run struct {
	name    string
	src     Source
	opts    RunOptions
	cancel  context.CancelFunc
	running atomic.Bool   // set from Start's call until Stop: it blocks a second start
	ready   chan struct{} // closed once the source's Start has returned

	events atomic.Int64 // accepted into the buffer
	drops  atomic.Int64 // rejected by a full buffer or lost by a failed append
	errors atomic.Int64

	// Owned by the writer goroutine.
	reported  int64 // drops already recorded in a capture.drop event
	lastDrop  time.Time
	lastCount int64
	lastTick  time.Time
	rate      atomic.Int64 // events per second over the last tick, ×1
}

// NewPipeline starts the writer goroutine; Close stops it.
func NewPipeline(out Appender, o PipelineOptions) *Pipeline {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = MaxBatch
	}
	if o.SelfPID == 0 {
		o.SelfPID = int64(os.Getpid())
	}
	if o.DropEvery <= 0 {
		o.DropEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{
		out: out, buf: make(chan item, o.Buffer), maxBatch: o.MaxBatch, self: o.SelfPID,
		dropGap: o.DropEvery, log: o.Logger, runs: map[string]*run{},
		quit: make(chan struct{}), ctx: ctx, stop: cancel,
	}
	p.wg.Add(1)
	go p.write()
	return p
}

// ErrRunning is returned by Start for a source that is already running.
var ErrRunning = errors.New("already running")

// Start starts the named source and returns once its Start has returned.
// A source that refuses returns its reason as a failed_precondition error.
func (p *Pipeline) Start(name string, o RunOptions) error {
	src, ok := newSource(name)
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "unknown capture source %q (capture sources lists them)", name)
	}
	p.mu.Lock()
	if r := p.runs[name]; r != nil && r.running.Load() {
		p.mu.Unlock()
		return wire.Errorf(wire.FailedPrecondition, "capture source %s is %v; capture stop %s first", name, ErrRunning, name)
	}
	r := &run{name: name, src: src, opts: o, lastTick: time.Now(), ready: make(chan struct{})}
	defer close(r.ready)
	r.running.Store(true)
	p.runs[name] = r
	p.mu.Unlock()

	if o.Config.Logger == nil {
		o.Config.Logger = p.log.With("source", name)
	}
	ctx, cancel := context.WithCancel(p.ctx)
	r.cancel = cancel
	if err := src.Start(ctx, o.Config, p.emitter(r)); err != nil {
		cancel()
		r.running.Store(false)
		r.errors.Add(1)
		return wire.Errorf(wire.FailedPrecondition, "capture source %s cannot start: %v", name, err)
	}
	return nil
}

// emitter returns the Emit of one run: self-exclusion, defaults and the
// run's filter apply here, before the buffer, so only matching events take
// room in it.
func (p *Pipeline) emitter(r *run) Emit {
	return func(b *journal.Body) bool {
		if b.Proc != nil && b.Container == nil {
			b.Container = &journal.Container{ID: "host"}
		}
		if !r.opts.IncludeSelf && b.Proc != nil && b.Proc.PID == p.self {
			return true
		}
		if f := r.opts.Filter; f != nil {
			ev := journal.Event{Stream: journal.Capture, Time: time.Now().UnixNano(), Body: *b}
			if !f.MatchEvent(&ev) {
				return true
			}
		}
		select {
		case p.buf <- item{run: r, body: b}:
			r.events.Add(1)
			return true
		default:
			r.drops.Add(1)
			return false
		}
	}
}

// Stop stops the named sources (every running one when names is empty),
// then waits until everything they emitted has been appended. It returns
// the names it stopped.
func (p *Pipeline) Stop(names ...string) ([]string, error) {
	p.mu.Lock()
	var rs []*run
	if len(names) == 0 {
		for _, r := range p.runs {
			if r.running.Load() {
				rs = append(rs, r)
			}
		}
	} else {
		for _, n := range names {
			r := p.runs[n]
			if r == nil || !r.running.Load() {
				p.mu.Unlock()
				return nil, wire.Errorf(wire.FailedPrecondition, "capture source %s is not running", n)
			}
			rs = append(rs, r)
		}
	}
	p.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	var errs []error
	stopped := make([]string, 0, len(rs))
	for _, r := range rs {
		<-r.ready // a source is stopped only once its Start has returned
		if !r.running.Load() {
			continue // its Start failed meanwhile
		}
		if err := r.src.Stop(); err != nil {
			r.errors.Add(1)
			errs = append(errs, fmt.Errorf("stop %s: %w", r.name, err))
		}
		r.cancel()
		r.running.Store(false)
		stopped = append(stopped, r.name)
	}
	if err := p.Flush(context.Background()); err != nil {
		errs = append(errs, err)
	}
	return stopped, errors.Join(errs...)
}

// Flush returns once every event accepted before it was called has been
// appended (or counted as dropped when the append failed), and pending
// drops have been recorded.
func (p *Pipeline) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.buf <- item{flush: done}:
	case <-p.quit:
		return journal.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-p.quit:
		return journal.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops every source, drains the buffer and ends the writer. Calls
// after the first return the first's result.
func (p *Pipeline) Close() error {
	p.closeOnce.Do(func() {
		_, p.closeErr = p.Stop()
		p.stop()
		p.wg.Wait()
	})
	return p.closeErr
}

// Status is one source's row of `capture status`.
type Status struct {
	Source      string  `json:"source"`
	Running     bool    `json:"running"`
	EventsPerS  float64 `json:"events_per_s"`
	Events      int64   `json:"events"`
	Drops       int64   `json:"drops"`
	Errors      int64   `json:"errors"`
	Description string  `json:"description,omitempty"`
}

// Status reports every registered source, with the counters of its
// current or last run.
func (p *Pipeline) Status() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Status
	for _, n := range SourceNames() {
		s := Status{Source: n}
		if r := p.runs[n]; r != nil {
			st := r.stats()
			s.Running = r.running.Load()
			s.Events, s.Drops, s.Errors = st.Events, st.Drops, st.Errors
			if s.Running {
				s.EventsPerS = float64(r.rate.Load())
			}
		}
		out = append(out, s)
	}
	return out
}

// Running reports whether the named source is running.
func (p *Pipeline) Running(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.runs[name]
	return r != nil && r.running.Load()
}

func (r *run) stats() SourceStats {
	st := SourceStats{Events: r.events.Load(), Drops: r.drops.Load(), Errors: r.errors.Load()}
	if ks, ok := r.src.(StatsSource); ok {
		st.Drops += ks.KernelDrops()
	}
	return st
}

// write is the writer goroutine: it drains the buffer in batches into the
// journal and records drops.
func (p *Pipeline) write() {
	defer p.wg.Done()
	defer close(p.quit)
	tick := time.NewTicker(p.dropGap)
	defer tick.Stop()
	batch := make([]*journal.Body, 0, p.maxBatch)
	owners := make([]*run, 0, p.maxBatch)
	var flushes []chan struct{}
	for {
		var it item
		select {
		case it = <-p.buf:
		case now := <-tick.C:
			p.tick(now, false)
			continue
		case <-p.ctx.Done():
			// Close has stopped every source and flushed: nothing is left.
			return
		}
		// Take what is already waiting, up to one batch.
	fill:
		for {
			if it.flush != nil {
				flushes = append(flushes, it.flush)
			} else {
				batch = append(batch, it.body)
				owners = append(owners, it.run)
			}
			if len(batch) >= p.maxBatch {
				break
			}
			select {
			case it = <-p.buf:
			default:
				break fill
			}
		}
		p.append(batch, owners)
		clear(batch)
		clear(owners)
		batch, owners = batch[:0], owners[:0]
		if len(flushes) > 0 {
			p.tick(time.Now(), true)
			for _, f := range flushes {
				close(f)
			}
			flushes = flushes[:0]
		}
	}
}

func (p *Pipeline) append(batch []*journal.Body, owners []*run) {
	if len(batch) == 0 {
		return
	}
	if _, err := p.out.Append(p.ctx, batch...); err != nil {
		// The events are lost: count them as drops of their sources so
		// that a capture.drop records them once the journal takes writes.
		for _, r := range owners {
			r.drops.Add(1)
		}
		owners[0].errors.Add(1)
		p.log.Warn("capture: append failed; events counted as dropped", "events", len(batch), "err", err)
	}
}

// tick updates the rates and records new drops, at most once per dropGap
// per source unless force (a flush: stop must not leave drops unrecorded).
func (p *Pipeline) tick(now time.Time, force bool) {
	p.mu.Lock()
	rs := make([]*run, 0, len(p.runs))
	for _, r := range p.runs {
		rs = append(rs, r)
	}
	p.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	var drops []*journal.Body
	var owners []*run
	for _, r := range rs {
		if !force {
			if el := now.Sub(r.lastTick); el > 0 {
				n := r.events.Load()
				r.rate.Store(int64(float64(n-r.lastCount) / el.Seconds()))
				r.lastCount, r.lastTick = n, now
			}
		}
		total := r.stats().Drops
		if total <= r.reported || (!force && now.Sub(r.lastDrop) < p.dropGap) {
			continue
		}
		n := total - r.reported
		drops = append(drops, &journal.Body{
			Kind:    DropKind,
			Subject: "source/" + r.name,
			Actor:   journal.SystemActor(),
			Data:    map[string]any{"source": r.name, "count": n, "total": total},
		})
		owners = append(owners, r)
	}
	if len(drops) == 0 {
		return
	}
	if _, err := p.out.Append(p.ctx, drops...); err != nil {
		p.log.Warn("capture: cannot record dropped events", "err", err)
		return
	}
	for i, r := range owners {
		r.reported += drops[i].Data["count"].(int64)
		r.lastDrop = now
	}
}
