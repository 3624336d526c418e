package scripts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// Chisel is a compiled chisel, ready to run any number of times; each run
// has Lua states of its own.
type Chisel struct {
	lib   *Library
	dir   string // the chisel-path directory it came from; "" for a built-in or a client's script
	name  string
	chunk string // what Lua messages call its file
	proto *lua.FunctionProto
	info  Info
}

// Info describes the chisel.
func (c *Chisel) Info() Info { return c.info }

// Feed is where a run's events come from: history (the daemon's journal
// scan, or a capture file) or live.
type Feed interface {
	// Next returns the next event, io.EOF at the end. The Raw is valid
	// until the next call. Next must return when ctx ends.
	Next(ctx context.Context) (*journal.Raw, error)
}

// RunOptions are the parameters of one run.
type RunOptions struct {
	// Args are the positional arguments, given to on_set_arg in the order
	// of the chisel's `args` global.
	Args []string
	// Live fires on_interval by the wall clock instead of event time. A live
	// run ends when ctx ends (Run returns ctx.Err(), without
	// on_capture_end) or when the feed ends (io.EOF: on_capture_end runs).
	Live bool
	// Output receives what the script prints (print, io.write), line by
	// line, without the newline. An error from it stops the run with
	// that error. Nil discards the output.
	Output func(line string) error
}

// ScriptError is an error raised by a chisel's Lua code: Msg carries the
// file:line of the error, Traceback Lua's stack traceback.
type ScriptError struct {
	Chisel    string
	Callback  string // "on_event", "top level", …
	Msg       string
	Traceback string
}

// Error reads "chisel NAME: CALLBACK: FILE:LINE: MESSAGE" ("chisel NAME:
// FILE:LINE: MESSAGE" for a syntax error).
func (e *ScriptError) Error() string {
	if e.Callback == "" {
		return fmt.Sprintf("chisel %s: %s", e.Chisel, e.Msg)
	}
	return fmt.Sprintf("chisel %s: %s: %s", e.Chisel, e.Callback, e.Msg)
}

// Run runs the chisel over feed to its end, on a goroutine of its own on
// which every callback runs, and returns once that goroutine is done. It
// returns a *ScriptError for an error in the script (its file:line
// included), an error wrapping ErrBudget or ErrMemory when the chisel
// outruns its bounds, and ctx.Err() when ctx ends first. The chisel's
// filter (chisel.set_filter) is applied to each event before on_event.
func (c *Chisel) Run(ctx context.Context, feed Feed, opts RunOptions) error {
	errc := make(chan error, 1)
	go func() {
		errc <- func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("chisel %s: internal error: %v", c.name, p)
				}
			}()
			r := newRun(c, ctx, opts)
			defer r.close()
			if err := r.run(feed); !errors.Is(err, errExit) {
				return err
			}
			return nil // os.exit(0): the chisel ended the run
		}()
	}()
	return <-errc
}

// describe runs the chisel's top level in a throwaway state and reads its
// globals.
func (c *Chisel) describe() (Info, error) {
	r := newRun(c, context.Background(), RunOptions{})
	defer r.close()
	in, err := r.newInstance(c, 0)
	if err != nil {
		return Info{}, err
	}
	info := readInfo(in.L)
	if info.Description == "" && info.ShortDescription == "" && !hasCallback(in.L) {
		return Info{}, fmt.Errorf("%s %w", c.chunk, errModule)
	}
	return info, nil
}

// run is one execution of a chisel and of those it chisel.exec'd.
type run struct {
	ctx       context.Context
	c         *Chisel
	lib       *Library
	opts      RunOptions
	g         *guard
	instances []*instance // the chisel first, then what it exec'd, in order

	cur          *journal.Raw // the event being delivered
	prev         journal.Raw  // a copy of the last event delivered: evt.field outside on_event reads it
	threads      *threadTable // sysdig.get_thread_table's, when a chisel calls it
	outputFormat string       // sysdig.set_output_format's: "normal" or "json"
	callback     string       // the outermost callback running, for os.exit's error
	feed         Feed         // what the run reads, for sysdig.get_read_progress
	udp          *net.UDPConn // sysdig.udp_setpeername's
	first, last  int64        // times of the first and last event (history), or of the start and now (live)
	seen         bool
	ended        bool // sysdig.end_capture
	nesting      int  // callbacks in progress (exec nests on_init)
	partial      strings.Builder
	outErr       error
}

// instance is one chisel's Lua state within a run.
type instance struct {
	r            *run
	c            *Chisel
	L            *lua.LState
	info         Info
	depth        int
	initializing bool
	loaded       map[string]lua.LValue // require's modules

	fields      []*filter.FieldGetter
	fieldIsTime []bool
	filter      *filter.Filter
	filterText  string // as chisel.set_filter was given it, for sysdig.get_filter
	interval    int64  // ns; 0: no on_interval
	lastTick    int64  // the interval boundary last passed
	nextTick    int64  // 0: to be armed

	onEvent, onInterval, onCaptureStart, onCaptureEnd *lua.LFunction
	formatter                                         *formatter // chisel.set_event_formatter's; nil prints nothing per event
}

func newRun(c *Chisel, ctx context.Context, opts RunOptions) *run {
	lib := c.lib
	if lib == nil {
		lib = NewLibrary(Options{})
	}
	return &run{ctx: ctx, c: c, lib: lib, opts: opts, outputFormat: "normal",
		g: newGuard(ctx, c.name, lib.opts.CallbackCPU, lib.opts.MemoryLimit)}
}

func (r *run) close() {
	r.g.close()
	if r.udp != nil {
		r.udp.Close()
	}
	for _, in := range r.instances {
		in.L.Close()
	}
}

// ProgressFeed is a Feed that knows how far it has read (0 to 100), for
// sysdig.get_read_progress.
type ProgressFeed interface {
	Feed
	Progress() float64
}

// readProgress is sysdig.get_read_progress: how far a history run has
// read, 0 to 100; 0 live, and for a feed that cannot tell.
func (r *run) readProgress() float64 {
	if pf, ok := r.feed.(ProgressFeed); ok && !r.opts.Live {
		return pf.Progress()
	}
	return 0
}

func (r *run) run(feed Feed) error {
	r.feed = feed
	main, err := r.newInstance(r.c, 0)
	if err != nil {
		return err
	}
	if err := r.setArgs(main, r.opts.Args); err != nil {
		return err
	}
	if err := r.initInstance(main); err != nil {
		return err
	}
	if r.opts.Live {
		r.first = nowNS()
	}
	for _, in := range r.instances {
		if in.onCaptureStart != nil {
			if _, err := r.call(in, in.onCaptureStart, "on_capture_start", 0); err != nil {
				return err
			}
		}
	}
	if r.opts.Live {
		err = r.live(feed)
	} else {
		err = r.history(feed)
	}
	if err != nil {
		return err
	}
	end := r.last
	if r.opts.Live || !r.seen {
		end = nowNS()
	}
	for _, in := range r.instances {
		if in.onCaptureEnd == nil {
			continue
		}
		since := r.first
		if in.interval > 0 && in.lastTick != 0 {
			since = in.lastTick
		}
		delta := int64(0)
		if r.seen || r.opts.Live {
			delta = end - since
		}
		if _, err := r.call(in, in.onCaptureEnd, "on_capture_end", 0,
			lua.LNumber(end/1e9), lua.LNumber(end%1e9), lua.LNumber(delta)); err != nil {
			return err
		}
	}
	if r.partial.Len() > 0 {
		r.emit(r.partial.String())
		r.partial.Reset()
	}
	return r.outErr
}

// history walks the feed to its end, firing on_interval by event time.
func (r *run) history(feed Feed) error {
	for !r.ended {
		if err := r.stopped(); err != nil {
			return err
		}
		raw, err := feed.Next(r.ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return r.feedError(err)
		}
		t := raw.Time()
		for _, in := range r.instances {
			if in.interval > 0 {
				if err := r.tickByEvent(in, t); err != nil {
					return err
				}
			}
		}
		if err := r.deliver(raw, t); err != nil {
			return err
		}
	}
	return nil
}

// tickByEvent fires in's on_interval when t has passed the end of the
// current interval. Intervals are aligned to multiples of the interval
// since the epoch; an interval without events fires nothing, so a quiet
// night does not print thousands of empty tables.
func (r *run) tickByEvent(in *instance, t int64) error {
	iv := in.interval
	if in.nextTick == 0 {
		in.lastTick = t - t%iv
		in.nextTick = in.lastTick + iv
		return nil
	}
	if t < in.nextTick {
		return nil
	}
	end, delta := in.nextTick, in.nextTick-in.lastTick
	in.lastTick = t - t%iv
	in.nextTick = in.lastTick + iv
	return r.fireInterval(in, end, delta)
}

func (r *run) fireInterval(in *instance, ts, delta int64) error {
	if in.onInterval == nil {
		return nil
	}
	_, err := r.call(in, in.onInterval, "on_interval", 0, lua.LNumber(ts/1e9), lua.LNumber(ts%1e9), lua.LNumber(delta))
	return err
}

// armInterval restarts in's interval after chisel.set_interval_*.
func (in *instance) armInterval() {
	in.nextTick = 0
	if in.r.opts.Live {
		now := nowNS()
		in.lastTick, in.nextTick = now, now+in.interval
	}
}

// deliver hands one event to every chisel of the run whose filter it
// passes.
func (r *run) deliver(raw *journal.Raw, t int64) error {
	if !r.seen {
		r.first, r.seen = t, true
	}
	r.last = t
	r.cur = raw
	defer func() {
		r.cur = nil
		r.prev = journal.Raw{Stream: raw.Stream, Seq: raw.Seq, Record: append(r.prev.Record[:0], raw.Record...)}
	}()
	if r.threads != nil {
		r.threads.observe(raw)
	}
	for _, in := range r.instances {
		if in.onEvent == nil && in.formatter == nil || in.filter != nil && !in.filter.MatchRaw(raw) {
			continue
		}
		print := in.formatter != nil
		if in.onEvent != nil {
			nret := 0
			if print {
				nret = 1
			}
			v, err := r.call(in, in.onEvent, "on_event", nret)
			if err != nil {
				return err
			}
			print = print && v == lua.LTrue // sysdig prints the events on_event returns true for
		}
		if print {
			r.emit(in.formatter.format(raw, r.outputFormat))
		}
	}
	return nil
}

type fed struct {
	raw *journal.Raw
	err error
}

// live follows the feed, firing on_interval by the wall clock. The feed is
// read on a goroutine of its own so that ticks fire while it waits; each
// event is handed over and acknowledged, since a Raw is only valid until
// the next call of Next.
func (r *run) live(feed Feed) error {
	ctx, cancel := context.WithCancel(r.ctx)
	items, ack, pumped := make(chan fed), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			raw, err := feed.Next(ctx)
			select {
			case items <- fed{raw, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			select {
			case <-ack:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-pumped }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !r.ended {
		next := int64(0)
		for _, in := range r.instances {
			if in.interval > 0 && (next == 0 || in.nextTick < next) {
				next = in.nextTick
			}
		}
		var tick <-chan time.Time
		if next != 0 {
			timer.Reset(time.Duration(max(next-nowNS(), 0)))
			tick = timer.C
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-r.g.done:
			return r.stopped()
		case it := <-items:
			if it.err == io.EOF {
				return nil
			}
			if it.err != nil {
				return r.feedError(it.err)
			}
			err := r.deliver(it.raw, it.raw.Time())
			ack <- struct{}{}
			if err != nil {
				return err
			}
		case <-tick:
			now := nowNS()
			for _, in := range r.instances {
				if in.interval > 0 && in.nextTick <= now {
					delta := now - in.lastTick
					in.lastTick, in.nextTick = now, now+in.interval
					if err := r.fireInterval(in, now, delta); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// stopped returns why the run must stop now, or nil.
func (r *run) stopped() error {
	cause := r.g.tripped()
	if cause == nil {
		return nil
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	return cause
}

func (r *run) feedError(err error) error {
	if cerr := r.ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("chisel %s: read events: %w", r.c.name, err)
}

// newInstance creates a state for c within the run, with the API
// installed, and runs c's top level.
func (r *run) newInstance(c *Chisel, depth int) (*instance, error) {
	in := &instance{r: r, c: c, depth: depth, loaded: map[string]lua.LValue{}}
	in.L = r.newState(in)
	r.g.states = append(r.g.states, in.L)
	if r.threads == nil && usesName(c.proto, "get_thread_table") {
		r.threads = newThreadTable()
	}
	r.instances = append(r.instances, in)
	r.installAPI(in)
	if _, err := r.call(in, in.L.NewFunctionFromProto(c.proto), "top level", 0); err != nil {
		return nil, err
	}
	in.info = readInfo(in.L)
	in.lookupCallbacks()
	return in, nil
}

func (in *instance) lookupCallbacks() {
	fn := func(name string) *lua.LFunction {
		f, _ := in.L.GetGlobal(name).(*lua.LFunction)
		return f
	}
	in.onEvent = fn("on_event")
	in.onInterval = fn("on_interval")
	in.onCaptureStart = fn("on_capture_start")
	in.onCaptureEnd = fn("on_capture_end")
}

// setArgs gives the positional args to on_set_arg, in the order of the
// `args` global. An explicit false from on_set_arg refuses the value.
func (r *run) setArgs(in *instance, args []string) error {
	name, decl := in.c.name, in.info.Args
	if len(args) > len(decl) {
		return fmt.Errorf("chisel %s takes %d argument(s) (%s), got %d", name, len(decl), in.info.Usage(), len(args))
	}
	onSetArg, _ := in.L.GetGlobal("on_set_arg").(*lua.LFunction)
	for i, a := range decl {
		if i >= len(args) {
			if !a.Optional {
				return fmt.Errorf("chisel %s: missing argument %s (%s); usage: %s %s", name, a.Name, a.Description, name, in.info.Usage())
			}
			continue
		}
		if onSetArg == nil {
			return fmt.Errorf("chisel %s declares args but no on_set_arg function", name)
		}
		ok, err := r.call(in, onSetArg, "on_set_arg", 1, lua.LString(a.Name), lua.LString(args[i]))
		if err != nil {
			return err
		}
		if ok == lua.LFalse {
			return fmt.Errorf("chisel %s: argument %s=%q was refused", name, a.Name, args[i])
		}
	}
	return nil
}

// initInstance calls on_init; an explicit false from it ends the run with
// an error (the chisel has usually printed why).
func (r *run) initInstance(in *instance) error {
	if fn, ok := in.L.GetGlobal("on_init").(*lua.LFunction); ok {
		in.initializing = true
		ok, err := r.call(in, fn, "on_init", 1)
		in.initializing = false
		if err != nil {
			return err
		}
		if ok == lua.LFalse {
			return fmt.Errorf("chisel %s: on_init returned false", in.c.name)
		}
	}
	in.lookupCallbacks()
	return nil
}

// call calls fn in in's state under the run's guard, returning its first
// result when nret is 1.
func (r *run) call(in *instance, fn *lua.LFunction, what string, nret int, args ...lua.LValue) (lua.LValue, error) {
	L := in.L
	if r.nesting == 0 {
		r.g.begin(what)
		r.callback = what
	}
	r.nesting++
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), nret, nil)
	r.nesting--
	if r.nesting == 0 {
		r.g.end()
	}
	if err != nil {
		if stop := r.stopped(); stop != nil {
			return lua.LNil, stop
		}
		var ae *lua.ApiError
		if errors.As(err, &ae) && ae.Object != nil {
			return lua.LNil, &ScriptError{Chisel: in.c.name, Callback: what, Msg: locate(ae.Object.String(), ae.StackTrace, in.c.chunk), Traceback: ae.StackTrace}
		}
		return lua.LNil, &ScriptError{Chisel: in.c.name, Callback: what, Msg: err.Error()}
	}
	if nret == 0 {
		return lua.LNil, nil
	}
	v := L.Get(-1)
	L.Pop(1)
	return v, nil
}

// locate prefixes msg with the innermost chunk:line of the traceback when
// Lua gave none (a stack overflow is raised by the VM, not at a line).
func locate(msg, traceback, chunk string) string {
	if strings.HasPrefix(msg, chunk+":") {
		return msg
	}
	for _, line := range strings.Split(traceback, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, chunk+":"); ok {
			if n, _, ok := strings.Cut(rest, ":"); ok {
				return chunk + ":" + n + ": " + msg
			}
		}
	}
	return msg
}

// write adds printed text to the output, sending complete lines.
func (r *run) write(s string) {
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		if r.partial.Len() > 0 {
			r.partial.WriteString(s[:i])
			r.emit(r.partial.String())
			r.partial.Reset()
		} else {
			r.emit(s[:i])
		}
		s = s[i+1:]
	}
	r.partial.WriteString(s)
	if r.partial.Len() > maxPartialLine {
		r.emit(r.partial.String())
		r.partial.Reset()
	}
}

func (r *run) emit(line string) {
	if r.opts.Output == nil || r.outErr != nil {
		return
	}
	if err := r.opts.Output(line); err != nil {
		r.outErr = fmt.Errorf("chisel %s: output: %w", r.c.name, err)
		r.g.cancel(r.outErr)
	}
}

// readInfo reads the globals that describe a chisel.
func readInfo(L *lua.LState) Info {
	str := func(v lua.LValue) string {
		if s, ok := v.(lua.LString); ok {
			return string(s)
		}
		return ""
	}
	info := Info{
		Description:      str(L.GetGlobal("description")),
		ShortDescription: str(L.GetGlobal("short_description")),
		Category:         str(L.GetGlobal("category")),
		Stream:           str(L.GetGlobal("stream")),
	}
	if args, ok := L.GetGlobal("args").(*lua.LTable); ok {
		for i := 1; i <= args.Len(); i++ {
			t, ok := args.RawGetInt(i).(*lua.LTable)
			if !ok {
				continue
			}
			opt := t.RawGetString("optional")
			info.Args = append(info.Args, Arg{
				Name:        str(t.RawGetString("name")),
				Description: str(t.RawGetString("description")),
				Type:        str(t.RawGetString("argtype")),
				Optional:    lua.LVAsBool(opt) && opt != lua.LString("false"),
			})
		}
	}
	return info
}

func hasCallback(L *lua.LState) bool {
	for _, name := range []string{"on_event", "on_init", "on_interval", "on_capture_end", "on_capture_start", "on_set_arg"} {
		if _, ok := L.GetGlobal(name).(*lua.LFunction); ok {
			return true
		}
	}
	return false
}
