package scripts

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Limits of every Lua state, on top of the guard's time and memory bound.
const (
	callStackSize   = 200     // nested Lua calls: deep recursion is "stack overflow"
	registrySize    = 4 << 10 // value stack slots, initially
	registryMaxSize = 1 << 20 // and at most (16 MiB of values)
	maxRepeat       = 1 << 30 // string.rep never builds more than this, nor more than the memory limit
	maxPartialLine  = 1 << 20 // io.write without a newline is flushed as a line past this
)

// sandboxOS is what the sandbox keeps of Lua's os library: clocks and
// dates. os.getenv is left out too: the daemon's environment is not the
// script's business.
var sandboxOS = []string{"clock", "date", "difftime", "time"}

// removedBase are the base functions the sandbox drops: file access and
// the package system (require is cairn's own).
var removedBase = []string{"dofile", "loadfile", "module", "_printregs"}

// newState returns a Lua state with the libraries the run allows, bound to
// the run's guard. The sandbox opens base, table, string and math, an os
// reduced to sandboxOS, an io reduced to io.write, and cairn's require;
// AllowUnsafe opens every library gopher-lua has. print and io.write go to
// the run's output, and os.exit never exists: stopping the daemon is never
// what a chisel means (sysdig.end_capture ends a run).
func (r *run) newState(in *instance) *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       callStackSize,
		RegistrySize:        registrySize,
		RegistryMaxSize:     registryMaxSize,
		MinimizeStackMemory: true,
	})
	open := func(name string, fn lua.LGFunction) {
		L.Push(L.NewFunction(fn))
		L.Push(lua.LString(name))
		L.Call(1, 0)
	}
	var origRequire lua.LValue
	if r.lib.opts.AllowUnsafe {
		L.OpenLibs()
		origRequire = L.GetGlobal("require")
		if os, ok := L.GetGlobal("os").(*lua.LTable); ok {
			os.RawSetString("exit", L.NewFunction(in.osExit)) // ends the run, not the daemon
		}
		if io, ok := L.GetGlobal("io").(*lua.LTable); ok {
			io.RawSetString("write", L.NewFunction(r.ioWrite))
		}
	} else {
		open(lua.BaseLibName, lua.OpenBase)
		open(lua.TabLibName, lua.OpenTable)
		open(lua.StringLibName, lua.OpenString)
		open(lua.MathLibName, lua.OpenMath)
		open(lua.OsLibName, lua.OpenOs)
		for _, name := range removedBase {
			L.SetGlobal(name, lua.LNil)
		}
		full := L.GetGlobal("os").(*lua.LTable)
		os := L.NewTable()
		for _, name := range sandboxOS {
			os.RawSetString(name, full.RawGetString(name))
		}
		os.RawSetString("exit", L.NewFunction(in.osExit))
		L.SetGlobal("os", os)
		io := L.NewTable()
		io.RawSetString("write", L.NewFunction(r.ioWrite))
		L.SetGlobal("io", io)
		// The registry's copies of the full libraries would be reachable
		// through nothing the script has; drop them anyway.
		if loaded, ok := L.GetField(L.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable); ok {
			loaded.RawSetString(lua.OsLibName, os)
			loaded.RawSetString(lua.IoLibName, io)
		}
	}
	L.SetGlobal("print", L.NewFunction(r.print))
	L.SetGlobal("collectgarbage", L.NewFunction(r.collectGarbage))
	L.SetGlobal("require", L.NewFunction(r.require(in, origRequire)))
	if str, ok := L.GetGlobal("string").(*lua.LTable); ok {
		for name, fn := range r.strFuncs() {
			str.RawSetString(name, L.NewFunction(fn))
		}
	}
	if tab, ok := L.GetGlobal("table").(*lua.LTable); ok {
		tab.RawSetString("concat", L.NewFunction(r.tableConcat))
	}
	L.SetContext(r.g)
	return L
}

// print writes its arguments, tab-separated, as a line of output.
func (r *run) print(L *lua.LState) int {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
	}
	b.WriteByte('\n')
	r.write(b.String())
	return 0
}

// ioWrite is io.write: its arguments, concatenated, with lines sent as
// they complete.
func (r *run) ioWrite(L *lua.LState) int {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		switch v := L.Get(i).(type) {
		case lua.LString, lua.LNumber:
			b.WriteString(v.String())
		default:
			L.ArgError(i, "string expected, got "+v.Type().String())
		}
	}
	r.write(b.String())
	return 0
}

// collectGarbage answers collectgarbage("count") with the guard's last
// estimate in KiB and does nothing else: a script must not trigger the
// daemon's garbage collector.
func (r *run) collectGarbage(L *lua.LState) int {
	if L.OptString(1, "collect") == "count" {
		L.Push(lua.LNumber(float64(r.g.used) / 1024))
		return 1
	}
	L.Push(lua.LNumber(0))
	return 1
}

// strRep is string.rep, refusing a result larger than the memory limit: it
// is built in one Go call, before any instruction could be checked.
func (r *run) strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if size := int64(len(s)) * int64(n); size > min(r.g.limit, maxRepeat) || size/int64(n) != int64(len(s)) {
		L.RaiseError("string.rep: a result of %d bytes is larger than the chisel's memory limit of %d MiB", int64(len(s))*int64(n), r.g.limit>>20)
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// require loads NAME.lua (a.b: a/b.lua) from the built-in chisels, then
// the chisel path, once per state. In unsafe mode a module not found there
// goes to Lua's own require.
func (r *run) require(in *instance, orig lua.LValue) lua.LGFunction {
	return func(L *lua.LState) int {
		name := L.CheckString(1)
		if v, ok := in.loaded[name]; ok {
			L.Push(v)
			return 1
		}
		// The standard libraries are loaded already, as in LuaJIT, whose
		// package.loaded holds them: require "math" is the sandbox's math.
		switch name {
		case "string", "table", "math", "os", "io", "coroutine":
			if lib, ok := L.GetGlobal(name).(*lua.LTable); ok {
				L.Push(lib)
				return 1
			}
		}
		if !validModule(name) {
			L.RaiseError("require %q: a module name is words of letters, digits and _ joined by dots", name)
		}
		s, ok := r.lib.findModule(name, in.c.dir)
		if !ok {
			if fn, ok := orig.(*lua.LFunction); ok {
				L.Push(fn)
				L.Push(lua.LString(name))
				L.Call(1, 1)
				return 1
			}
			L.RaiseError("module %q not found: require loads %s.lua from the chisel's own directory, the built-in chisels and the chisel path", name, strings.ReplaceAll(name, ".", "/"))
		}
		src, err := s.read()
		if err != nil {
			L.RaiseError("%v", err)
		}
		proto, err := compileLua(s.chunkName(), src)
		if err != nil {
			L.RaiseError("%v", err)
		}
		in.loaded[name] = lua.LTrue // a cycle sees the module as loaded
		L.Push(L.NewFunctionFromProto(proto))
		L.Push(lua.LString(name))
		L.Call(1, 1)
		v := L.Get(-1)
		L.Pop(1)
		if v == lua.LNil {
			v = lua.LTrue
		}
		in.loaded[name] = v
		L.Push(v)
		return 1
	}
}
