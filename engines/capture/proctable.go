package capture

import "sync"

// procEntry is what the proc source remembers of one live process, so that
// proc.* resolves on its later events (its exit above all, when /proc no
// longer tells).
type procEntry struct {
	PID, PPID int64
	Name      string
	Comm      string
	Exe       string
	Cmdline   string
	Cwd       string
	UID, GID  int64 // effective
	Container string
	StartNS   int64 // ns since boot (CLOCK_MONOTONIC, as the connector stamps)
	Self      bool  // the daemon or one of its descendants
}

// procTable is the in-memory process table of the proc source, keyed by
// pid (thread group id).
type procTable struct {
	mu    sync.Mutex
	procs map[int64]*procEntry
}

func newProcTable() *procTable {
	return &procTable{procs: make(map[int64]*procEntry)}
}

// get returns a copy of the entry for pid.
func (t *procTable) get(pid int64) (procEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.procs[pid]
	if !ok {
		return procEntry{}, false
	}
	return *e, true
}

// put stores e, replacing what was known of its pid.
func (t *procTable) put(e procEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.procs[e.PID] = &e
}

// fork adds child as a copy of its parent (a forked child runs the
// parent's program until it execs) and returns it. An unknown parent
// gives an entry with only pids and start time.
func (t *procTable) fork(parent, child, startNS int64) procEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var e procEntry
	if p, ok := t.procs[parent]; ok {
		e = *p
	}
	e.PID, e.PPID, e.StartNS = child, parent, startNS
	t.procs[child] = &e
	return e
}

// setIDs records a change of effective uid or gid (a UID/GID event).
func (t *procTable) setIDs(pid int64, uid, gid *int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.procs[pid]
	if !ok {
		return
	}
	if uid != nil {
		e.UID = *uid
	}
	if gid != nil {
		e.GID = *gid
	}
}

// remove forgets pid and returns what was known of it.
func (t *procTable) remove(pid int64) (procEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.procs[pid]
	if !ok {
		return procEntry{}, false
	}
	delete(t.procs, pid)
	return *e, true
}

// markSelf marks pid and all its known descendants as the daemon's own.
func (t *procTable) markSelf(pid int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	children := make(map[int64][]int64)
	for _, e := range t.procs {
		children[e.PPID] = append(children[e.PPID], e.PID)
	}
	stack := []int64{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e, ok := t.procs[p]; ok && !e.Self {
			e.Self = true
			stack = append(stack, children[p]...)
		}
	}
}

// len reports how many processes the table holds.
func (t *procTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.procs)
}
