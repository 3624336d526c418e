package cgstat

import "time"

// Container is a running container as readers outside the runtime engine
// see it (the metrics engine's collector, through the runtime's
// "runtime.containers" service): who it is, and where its cgroup and
// init process are, so they can Open and read it.
type Container struct {
	ID      string
	Name    string
	Image   string // the reference given to run
	ImageID string
	Created time.Time
	Started time.Time
	Pid     int    // the container's init, 0 when it is not running
	Cgroup  string // the cgroup path from the hierarchy root ("/cairn/<id>")
	Running bool
	// MemoryLimit and NanoCPUs are the limits it was given; 0 is none.
	MemoryLimit int64
	NanoCPUs    int64
}
