package scripts

import (
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// threadTable is sysdig's thread table rebuilt from the capture events a
// run has read (every event of the stream, before any chisel's filter):
// the threads alive at the point reached, each with its process's
// descriptors as the events opened, duplicated and closed them. It is
// kept only for a run whose chisels call sysdig.get_thread_table.
type threadTable struct {
	threads map[int64]*threadInfo // by tid
	fds     map[int64]map[int64]fdInfo
}

type threadInfo struct {
	tid, pid, ptid int64
	comm, exe, cwd string
	args           []string
	uid            int64
	username       string
}

type fdInfo struct{ name, typ string }

func newThreadTable() *threadTable {
	return &threadTable{threads: map[int64]*threadInfo{}, fds: map[int64]map[int64]fdInfo{}}
}

// observe applies one event.
func (tt *threadTable) observe(raw *journal.Raw) {
	if raw.Stream != journal.Capture {
		return
	}
	ev, err := raw.Decode()
	if err != nil || ev.Proc == nil || ev.Evt == nil {
		return
	}
	p := ev.Proc
	tid := p.TID
	if tid == 0 {
		tid = p.PID
	}
	if ev.Evt.Type == "procexit" {
		delete(tt.threads, tid)
		if tid == p.PID {
			delete(tt.fds, p.PID)
		}
		return
	}
	th := tt.threads[tid]
	if th == nil {
		th = &threadInfo{tid: tid}
		tt.threads[tid] = th
	}
	th.pid, th.ptid, th.comm, th.exe, th.cwd = p.PID, p.PPID, p.Name, p.Exe, p.Cwd
	if fields := strings.Fields(p.Cmdline); len(fields) > 1 {
		th.args = fields[1:]
	} else {
		th.args = nil
	}
	if ev.User != nil {
		th.uid, th.username = ev.User.UID, ev.User.Name
	}
	fds := tt.fds[p.PID]
	if fds == nil {
		fds = map[int64]fdInfo{}
		if parent, ok := tt.fds[p.PPID]; ok && ev.Kind == "capture.clone" {
			for k, v := range parent { // a forked child starts with its parent's
				fds[k] = v
			}
		}
		tt.fds[p.PID] = fds
	}
	num := func(k string) (int64, bool) {
		switch n := ev.Data[k].(type) {
		case int64:
			return n, true
		case uint64:
			return int64(n), true
		}
		return 0, false
	}
	var cur fdInfo
	if ev.FD != nil {
		cur = fdInfo{name: ev.FD.Name, typ: ev.FD.Type}
	}
	res := ev.Evt.Res
	switch ev.Evt.Type {
	case "open", "openat", "openat2", "creat", "socket", "accept", "dup", "dup2", "dup3", "fcntl":
		// The result is the new descriptor (a copy's, for dup and fcntl).
		if res >= 0 && cur.typ != "" {
			fds[res] = cur
		}
	case "pipe":
		for _, k := range []string{"fd_r", "fd_w"} {
			if n, ok := num(k); ok {
				fds[n] = fdInfo{name: "pipe", typ: "pipe"}
			}
		}
	case "close":
		if n, ok := num("fd"); ok && res == 0 {
			delete(fds, n)
		}
	case "execve":
		// Descriptors survive exec unless close-on-exec, which the
		// capture does not record: they stay.
	default:
		if n, ok := num("fd"); ok && cur.typ != "" && n >= 0 {
			fds[n] = cur
		}
	}
}

// threadTableFunc is sysdig.get_thread_table (with each thread's fdtable)
// or its _nofds form.
func (r *run) threadTableFunc(fds bool) lua.LGFunction {
	return func(L *lua.LState) int {
		if r.threads == nil {
			r.threads = newThreadTable() // reached without naming it: what is seen from now on
		}
		L.Push(r.threads.table(L, fds))
		return 1
	}
}

// table is sysdig.get_thread_table's value: tid → {tid, pid, ptid, comm,
// exe, args, cwd, uid, username, fdtable = fd → {name, type, typechar}}.
// vmsize_kb, vmrss_kb and fdlimit are 0: the capture records no memory
// or limit figures (docs/chisels.md).
func (tt *threadTable) table(L *lua.LState, withFDs bool) *lua.LTable {
	out := L.NewTable()
	tids := make([]int64, 0, len(tt.threads))
	for tid := range tt.threads {
		tids = append(tids, tid)
	}
	sort.Slice(tids, func(i, j int) bool { return tids[i] < tids[j] })
	for _, tid := range tids {
		th := tt.threads[tid]
		t := L.NewTable()
		t.RawSetString("tid", lua.LNumber(th.tid))
		t.RawSetString("pid", lua.LNumber(th.pid))
		t.RawSetString("ptid", lua.LNumber(th.ptid))
		t.RawSetString("comm", lua.LString(th.comm))
		t.RawSetString("exe", lua.LString(th.exe))
		t.RawSetString("cwd", lua.LString(th.cwd))
		t.RawSetString("uid", lua.LNumber(th.uid))
		t.RawSetString("username", lua.LString(th.username))
		t.RawSetString("vmsize_kb", lua.LNumber(0))
		t.RawSetString("vmrss_kb", lua.LNumber(0))
		t.RawSetString("fdlimit", lua.LNumber(0))
		args := L.NewTable()
		for _, a := range th.args {
			args.Append(lua.LString(a))
		}
		t.RawSetString("args", args)
		if !withFDs {
			out.RawSetInt(int(tid), t)
			continue
		}
		fdt := L.NewTable()
		for n, fd := range tt.fds[th.pid] {
			e := L.NewTable()
			e.RawSetString("name", lua.LString(fd.name))
			e.RawSetString("type", lua.LString(fd.typ))
			e.RawSetString("typechar", lua.LString(filter.TypeChar(fd.typ)))
			fdt.RawSetInt(int(n), e)
		}
		t.RawSetString("fdtable", fdt)
		out.RawSetInt(int(tid), t)
	}
	return out
}

// usesName reports whether a compiled chunk or any function in it names s
// as a constant (a chisel that calls sysdig.get_thread_table).
func usesName(p *lua.FunctionProto, s string) bool {
	for _, c := range p.Constants {
		if str, ok := c.(lua.LString); ok && strings.HasPrefix(string(str), s) {
			return true
		}
	}
	for _, f := range p.FunctionPrototypes {
		if usesName(f, s) {
			return true
		}
	}
	return false
}
