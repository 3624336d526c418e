package scripts

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// ErrBudget and ErrMemory are wrapped by the errors Run returns when a
// callback runs past Options.CallbackCPU or the Lua states outgrow
// Options.MemoryLimit.
var (
	ErrBudget = errors.New("callback time budget exceeded")
	ErrMemory = errors.New("memory limit exceeded")
)

// guard bounds one run. It is the context every Lua state of the run
// carries: gopher-lua asks a state's context for Done() before every
// instruction, on the chisel's goroutine, which makes Done both the way to
// stop a running script (cancel the context) and a hook at which the Lua
// heap can be measured safely. It embeds a context.WithCancelCause so that
// coroutine contexts derived from it (unsafe mode) register as ordinary
// children and are canceled with it, without a goroutine calling Done.
type guard struct {
	context.Context
	cancel context.CancelCauseFunc
	done   <-chan struct{}

	name   string // the chisel, for messages
	budget time.Duration
	limit  int64

	base    time.Time
	started atomic.Int64  // ns since base when the running callback began, +1; 0 when idle
	what    atomic.Value  // string: the running callback
	measure atomic.Bool   // the watchdog asks for a heap walk
	rebase  atomic.Bool   // a walk ended: the watchdog takes the heap as it is now
	quiet   atomic.Int64  // ns since base before which no walk is asked for
	states  []*lua.LState // every state of the run; only the chisel goroutine touches it
	used    int64         // the last walk's estimate
	walker  walker        // reused, so that walking allocates little

	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

func newGuard(parent context.Context, name string, budget time.Duration, limit int64) *guard {
	ctx, cancel := context.WithCancelCause(parent)
	g := &guard{Context: ctx, cancel: cancel, done: ctx.Done(), name: name, budget: budget, limit: limit,
		base: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	g.what.Store("")
	go g.watch()
	return g
}

// Done is called by the Lua VM before every instruction.
func (g *guard) Done() <-chan struct{} {
	if g.measure.Load() {
		g.measure.Store(false)
		g.checkMemory()
	}
	return g.done
}

// close stops the watchdog and waits for it.
func (g *guard) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.stopped
	g.cancel(context.Canceled)
}

// begin and end bracket a callback.
func (g *guard) begin(what string) {
	g.what.Store(what)
	g.started.Store(int64(time.Since(g.base)) + 1)
}

func (g *guard) end() { g.started.Store(0) }

// tripped returns why the run was stopped, or nil.
func (g *guard) tripped() error {
	select {
	case <-g.done:
		return context.Cause(g.Context)
	default:
		return nil
	}
}

// watch is the run's watchdog: it stops a callback that outlives its
// budget, and asks for a heap walk when the process heap grows. It owns no
// Lua state; it only cancels and sets flags.
func (g *guard) watch() {
	defer close(g.stopped)
	tick := min(max(g.budget/10, time.Millisecond), 20*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	heap := newHeapSampler(g.limit)
	for {
		select {
		case <-g.stop:
			return
		case <-g.Context.Done():
			return
		case <-t.C:
		}
		if s := g.started.Load(); s != 0 {
			if ran := time.Since(g.base) - time.Duration(s-1); ran > g.budget {
				g.cancel(fmt.Errorf("chisel %s: %s ran for more than %v and was stopped (an endless loop?); each callback may run %v: %w",
					g.name, g.what.Load(), g.budget, g.budget, ErrBudget))
				return
			}
		}
		if g.rebase.Swap(false) {
			heap.primed = false
			heap.grew()
		}
		if time.Since(g.base) >= time.Duration(g.quiet.Load()) && heap.grew() {
			g.measure.Store(true)
		}
	}
}

// checkMemory walks the run's Lua states and stops the run when they hold
// more than the limit. It runs on the chisel's goroutine.
//
// A walk costs time in proportion to what the states hold, so the next one
// waits at least four times as long as this one took: walking takes at
// most a fifth of the run's time, however large a (legitimate) heap is.
func (g *guard) checkMemory() {
	start := time.Now()
	w := &g.walker
	w.reset()
	for _, L := range g.states {
		w.state(L)
	}
	g.used = w.n
	w.reset()
	g.quiet.Store(int64(time.Since(g.base) + 4*time.Since(start)))
	g.rebase.Store(true)
	if g.used > g.limit {
		g.cancel(fmt.Errorf("chisel %s: its Lua values take about %d MiB, more than the limit of %d MiB, and it was stopped: %w",
			g.name, g.used>>20, g.limit>>20, ErrMemory))
	}
}

// heapSampler watches the process heap cheaply (runtime/metrics, no
// stop-the-world) and says when it has grown enough since the last walk
// that the Lua heap is worth measuring: by a step of the limit in live
// bytes after a GC, or by the whole limit in allocated bytes before one
// (a fast bomb between two GCs).
type heapSampler struct {
	samples       []metrics.Sample
	step, limit   uint64
	live, objects uint64 // at the last walk, following decreases
	primed        bool
}

func newHeapSampler(limit int64) *heapSampler {
	return &heapSampler{
		samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}},
		step:    uint64(max(limit/8, 1<<20)),
		limit:   uint64(limit),
	}
}

func (h *heapSampler) grew() bool {
	metrics.Read(h.samples)
	var live, objects uint64
	if h.samples[0].Value.Kind() == metrics.KindUint64 {
		live = h.samples[0].Value.Uint64()
	}
	if h.samples[1].Value.Kind() == metrics.KindUint64 {
		objects = h.samples[1].Value.Uint64()
	}
	if !h.primed {
		h.live, h.objects, h.primed = live, objects, true
		return true // one walk at the start sets the run's own baseline
	}
	h.live, h.objects = min(h.live, live), min(h.objects, objects)
	if live-h.live >= h.step || objects-h.objects >= h.limit {
		h.live, h.objects = live, objects
		return true
	}
	return false
}

// walker estimates the bytes held by Lua values reachable from a state:
// globals, the registry, the locals and functions of every active frame.
// Sizes are estimates of gopher-lua's Go representation; a string is
// counted at every reference, which overestimates shared strings but bounds
// what table.concat of them could build.
type walker struct {
	seen  map[any]struct{}
	stack []lua.LValue
	n     int64
}

func (w *walker) state(L *lua.LState) {
	w.push(L.G.Global)
	w.push(L.G.Registry)
	// GetStack can answer the bottom frame again past a tail call, so the
	// depth is capped at what the call stack can hold.
	for level := 0; level <= callStackSize; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if fn, err := L.GetInfo("f", dbg, lua.LNil); err == nil {
			w.push(fn)
		}
		for i := 1; ; i++ {
			name, v := L.GetLocal(dbg, i)
			if name == "" {
				break
			}
			w.push(v)
		}
	}
	for i := 1; i <= L.GetTop(); i++ {
		w.push(L.Get(i))
	}
	w.drain()
}

func (w *walker) reset() {
	if w.seen == nil {
		w.seen = map[any]struct{}{}
	}
	clear(w.seen)
	clear(w.stack)
	w.stack, w.n = w.stack[:0], 0
}

// push counts a scalar at once and queues anything that holds references.
func (w *walker) push(v lua.LValue) {
	switch v := v.(type) {
	case lua.LString:
		w.n += 16 + int64(len(v))
	case *lua.LTable, *lua.LFunction, *lua.LUserData:
		w.stack = append(w.stack, v)
	case nil:
	default:
		w.n += 16
	}
}

func (w *walker) drain() {
	for len(w.stack) > 0 {
		v := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		switch v := v.(type) {
		case *lua.LTable:
			if w.mark(v) {
				continue
			}
			w.n += 96
			if v.Metatable != nil {
				w.push(v.Metatable)
			}
			v.ForEach(func(k, val lua.LValue) {
				w.n += 40
				w.push(k)
				w.push(val)
			})
		case *lua.LFunction:
			if w.mark(v) {
				continue
			}
			w.n += 64
			if v.Env != nil {
				w.push(v.Env)
			}
			for _, uv := range v.Upvalues {
				if uv != nil {
					w.n += 32
					w.push(uv.Value())
				}
			}
		case *lua.LUserData:
			if w.mark(v) {
				continue
			}
			w.n += 64
			if v.Env != nil {
				w.push(v.Env)
			}
			w.push(v.Metatable)
		}
	}
}

// mark reports whether v was seen already, marking it.
func (w *walker) mark(v any) bool {
	if _, ok := w.seen[v]; ok {
		return true
	}
	w.seen[v] = struct{}{}
	return false
}
