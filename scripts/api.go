package scripts

import (
	"encoding/json"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
	"github.com/cairnhq/cairn/journal/filter/sysdig"
)

// maxExecDepth bounds chains of chisel.exec (a chisel that execs itself).
const maxExecDepth = 8

// evtType reads evt.type, which evt.get_type prefers to the kind.
var evtType = func() *filter.FieldGetter {
	g, err := filter.Field("evt.type")
	if err != nil {
		panic("scripts: " + err.Error())
	}
	return g
}()

// installAPI sets the chisel, evt, cairn and sysdig tables of sysdig's
// chisel API (plus cairn's helpers) in in's state.
func (r *run) installAPI(in *instance) {
	L := in.L
	L.SetGlobal("chisel", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"request_field":   in.requestField,
		"set_filter":      in.setFilter,
		"set_interval_s":  func(L *lua.LState) int { in.setInterval(L, 1e9); return 0 },
		"set_interval_ns": func(L *lua.LState) int { in.setInterval(L, 1); return 0 },
		// sysdig's precise interval is its interval with a finer clock;
		// cairn's intervals are in ns already.
		"set_precise_interval_ns": func(L *lua.LState) int { in.setInterval(L, 1); return 0 },
		"set_event_formatter":     in.setEventFormatter,
		"exec":                    in.exec,
	}))
	L.SetGlobal("evt", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"field":    in.evtField,
		"get_num":  func(L *lua.LState) int { L.Push(lua.LNumber(in.event(L).Seq)); return 1 },
		"get_ts":   in.evtGetTS,
		"get_type": in.evtGetType,
	}))
	isLive := func(L *lua.LState) int { L.Push(lua.LBool(r.opts.Live)); return 1 }
	L.SetGlobal("cairn", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"top":             luaTop,
		"format_bytes":    func(L *lua.LState) int { L.Push(lua.LString(FormatBytes(float64(L.CheckNumber(1))))); return 1 },
		"format_interval": func(L *lua.LState) int { L.Push(lua.LString(FormatInterval(int64(L.CheckNumber(1))))); return 1 },
		"format_time":     luaFormatTime,
		"json":            luaJSON,
		"is_live":         isLive,
	}))
	// The parts of sysdig's own table that make sense here, so that
	// sysdig chisels run with few changes.
	L.SetGlobal("sysdig", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"is_live":           isLive,
		"get_output_format": func(L *lua.LState) int { L.Push(lua.LString(r.outputFormat)); return 1 },
		"set_output_format": in.setOutputFormat,
		"set_filter":        in.setFilter, // sysdig's capture filter: here, the chisel's
		// cairn knows no container's details yet: the host is no container,
		// so the table of containers seen is empty.
		"get_container_table":             func(L *lua.LState) int { L.Push(L.NewTable()); return 1 },
		"get_thread_table":                r.threadTableFunc(true),
		"get_thread_table_nofds":          r.threadTableFunc(false),
		"get_thread_table_barebone":       r.threadTableFunc(true),
		"get_thread_table_barebone_nofds": r.threadTableFunc(false),
		// The history's first and last event times (ns), as sysdig's of a
		// capture file: what the run has read so far.
		"get_firstevent_ts": func(L *lua.LState) int { L.Push(lua.LNumber(r.first)); return 1 },
		"get_lastevent_ts":  func(L *lua.LState) int { L.Push(lua.LNumber(r.last)); return 1 },
		"get_read_progress": func(L *lua.LState) int { L.Push(lua.LNumber(r.readProgress())); return 1 },
		// No terminal: output goes to the client over the socket.
		"get_terminal_info": func(L *lua.LState) int { L.Push(lua.LNil); return 1 },
		"udp_setpeername":   in.udpSetPeername,
		"udp_send":          in.udpSend,
		"end_capture":       func(L *lua.LState) int { r.ended = true; return 0 },
		"make_ts": func(L *lua.LState) int {
			L.Push(lua.LNumber(float64(L.CheckNumber(1))*1e9 + float64(L.OptNumber(2, 0))))
			return 1
		},
		// cairn's chisels print to the client over the socket: no tty,
		// and no container data to print yet.
		"is_tty":                  func(L *lua.LState) int { L.Push(lua.LFalse); return 1 },
		"is_print_container_data": func(L *lua.LState) int { L.Push(lua.LFalse); return 1 },
		"get_evtsource_name":      func(L *lua.LState) int { L.Push(lua.LString("syscall")); return 1 },
		"get_filter":              func(L *lua.LState) int { L.Push(lua.LString(in.filterText)); return 1 },
		"set_snaplen":             setSnaplen,
	}))
	for _, name := range []string{"chisel", "evt", "sysdig"} {
		missingIsNamed(L, name)
	}
}

// evtGetTS is sysdig's evt.get_ts(): the event's time as seconds and
// nanoseconds, two numbers.
func (in *instance) evtGetTS(L *lua.LState) int {
	t := in.event(L).Time()
	L.Push(lua.LNumber(t / 1e9))
	L.Push(lua.LNumber(t % 1e9))
	return 2
}

// setSnaplen is sysdig.set_snaplen(n): how much of each I/O buffer to
// capture. cairn captures no I/O buffers yet (docs/chisels.md), so there
// is nothing for it to bound; a bad length is still an error.
func setSnaplen(L *lua.LState) int {
	if n := L.CheckInt(1); n <= 0 {
		L.ArgError(1, "the snaplen is a positive number of bytes")
	}
	return 0
}

// missingIsNamed makes a call of a function the table lacks an error that
// names it (sysdig.get_thread_table is not part of cairn's chisel API
// yet), rather than Lua's "attempt to call a nil value".
func missingIsNamed(L *lua.LState, table string) {
	t, ok := L.GetGlobal(table).(*lua.LTable)
	if !ok {
		return
	}
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		key := L.CheckString(2)
		L.Push(L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("%s.%s is not part of cairn's chisel API yet (docs/chisels.md lists what is)", table, key)
			return 0
		}))
		return 1
	}))
	L.SetMetatable(t, mt)
}

// event returns the event being delivered, or raises an error outside
// on_event.
func (in *instance) event(L *lua.LState) *journal.Raw {
	if in.r.cur != nil {
		return in.r.cur
	}
	if in.r.prev.Record != nil { // outside on_event: the last event, as sysdig's
		return &in.r.prev
	}
	L.RaiseError("there is no event yet: evt functions read the event being delivered, or the last one")
	return nil
}

// requestField is chisel.request_field(name): a handle for evt.field. An
// unknown field is an error naming the nearest.
func (in *instance) requestField(L *lua.LState) int {
	name := L.CheckString(1)
	for i, g := range in.fields {
		if g.Name() == name {
			L.Push(lua.LNumber(i + 1))
			return 1
		}
	}
	g, err := filter.Field(name)
	if err != nil {
		L.RaiseError("chisel.request_field: %v", err)
	}
	in.fields = append(in.fields, g)
	in.fieldIsTime = append(in.fieldIsTime, g.Type() == "timestamp")
	L.Push(lua.LNumber(len(in.fields)))
	return 1
}

// setFilter is chisel.set_filter(FILTER): only events the filter matches
// reach on_event. "" removes the filter.
func (in *instance) setFilter(L *lua.LState) int {
	expr := L.CheckString(1)
	if expr == "" {
		in.filter, in.filterText = nil, ""
		return 0
	}
	f, err := compileChiselFilter(expr)
	if err != nil {
		L.RaiseError("chisel.set_filter %q: %v", expr, err)
	}
	in.filter, in.filterText = f, expr
	return 0
}

func (in *instance) setInterval(L *lua.LState, unit float64) {
	n := float64(L.CheckNumber(1)) * unit
	if n < 1e6 || n > 1e9*86400*366 {
		L.ArgError(1, "the interval must be between 1ms and a year")
	}
	in.interval = int64(n)
	in.armInterval()
}

// exec is chisel.exec(name, args…): the named chisel of the library joins
// the run with those arguments, and sees the same events.
func (in *instance) exec(L *lua.LState) int {
	r := in.r
	name := L.CheckString(1)
	if !in.initializing {
		L.RaiseError("chisel.exec can only be called from on_init")
	}
	if in.depth+1 >= maxExecDepth {
		L.RaiseError("chisel.exec %s: chisels exec'd %d deep; is one exec'ing itself?", name, maxExecDepth)
	}
	var args []string
	for i := 2; i <= L.GetTop(); i++ {
		args = append(args, L.ToStringMeta(L.Get(i)).String())
	}
	c, err := r.lib.loadFrom(name, in.c.dir)
	if err != nil {
		L.RaiseError("chisel.exec: %v", err)
	}
	child, err := r.newInstance(c, in.depth+1)
	if err == nil {
		err = r.setArgs(child, args)
	}
	if err == nil {
		err = r.initInstance(child)
	}
	if err != nil {
		L.RaiseError("chisel.exec %s: %v", name, err)
	}
	return 0
}

// evtField is evt.field(handle): the field's value in the current event, a
// number, string or boolean (a table for a map or list in data), or nil.
// Times (time, evt.time) are strings, RFC 3339 with nine digits in UTC, as
// sysdig's evt.time is a string: a Lua number cannot hold ns since the epoch
// exactly; evt.get_ts() gives the number.
func (in *instance) evtField(L *lua.LState) int {
	if L.Get(1) == lua.LNil { // a handle never requested: sysdig answers nil
		L.Push(lua.LNil)
		return 1
	}
	h := L.CheckInt(1)
	if h < 1 || h > len(in.fields) {
		L.ArgError(1, "not a handle from chisel.request_field")
	}
	v, ok := in.fields[h-1].Get(in.event(L))
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	if s, isStr := v.(string); isStr && isBuffer(in.fields[h-1].Name()) {
		L.Push(lua.LString(renderBuffer(s, in.r.outputFormat)))
		return 1
	}
	if n, isInt := v.(int64); isInt && in.fieldIsTime[h-1] {
		L.Push(lua.LString(FormatTime(n)))
		return 1
	}
	L.Push(toLua(L, v))
	return 1
}

// evtGetType is evt.get_type(): evt.type on a capture event that has one,
// else the kind.
func (in *instance) evtGetType(L *lua.LState) int {
	raw := in.event(L)
	if v, ok := evtType.Get(raw); ok {
		if s, _ := v.(string); s != "" {
			L.Push(lua.LString(s))
			return 1
		}
	}
	kind, err := raw.Kind()
	if err != nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(kind))
	return 1
}

// luaTop is cairn.top(tbl, n): the n entries of tbl with the largest
// numeric values (all when n is 0 or absent), as an array of {key, value},
// ties in key order.
func luaTop(L *lua.LState) int {
	tbl := L.CheckTable(1)
	n := L.OptInt(2, 0)
	out := L.NewTable()
	for _, e := range topEntries(tbl, n) {
		row := L.CreateTable(0, 2)
		row.RawSetString("key", e.key)
		row.RawSetString("value", e.value)
		out.Append(row)
	}
	L.Push(out)
	return 1
}

// luaFormatTime is cairn.format_time(ns) or cairn.format_time(s, ns): UTC,
// RFC 3339 with nine digits. The two-argument form is exact; a single
// number of ns since the epoch carries a float's ~0.25µs rounding.
func luaFormatTime(L *lua.LState) int {
	var ns int64
	if L.GetTop() >= 2 {
		ns = int64(L.CheckNumber(1))*1e9 + int64(L.CheckNumber(2))
	} else {
		ns = int64(L.CheckNumber(1))
	}
	L.Push(lua.LString(FormatTime(ns)))
	return 1
}

// luaJSON is cairn.json(value): compact JSON, object keys sorted.
func luaJSON(L *lua.LState) int {
	v, err := fromLua(L.CheckAny(1), 0)
	if err != nil {
		L.RaiseError("cairn.json: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		L.RaiseError("cairn.json: %v", err)
	}
	L.Push(lua.LString(b))
	return 1
}

// nowNS is the wall clock in ns, for live runs.
func nowNS() int64 { return time.Now().UnixNano() }

// compileChiselFilter compiles a chisel's filter: CEL, cairn's own, or
// sysdig's filter language, which sysdig's chisels pass
// ("evt.type=open and fd.typechar=f"). An expression both read alike
// (proc.name == "x") means the same in both; one CEL refuses is tried as
// a sysdig filter, and when that fails too the error is CEL's, with the
// sysdig reading's beside it.
func compileChiselFilter(expr string) (*filter.Filter, error) {
	f, err := filter.Compile(expr)
	if err == nil {
		return f, nil
	}
	cel, serr := sysdig.Translate(expr)
	if serr != nil {
		return nil, fmt.Errorf("%w (read as a sysdig filter: %v)", err, serr)
	}
	return filter.Compile(cel)
}
