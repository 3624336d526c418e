// Package containerspec holds the few plain types the runtime engine's
// service speaks (engines/runtime/service.go): what to run, and what a
// container is now. An engine that runs containers through the service
// (the deploy engine) imports this package, never the runtime itself.
package containerspec

// Spec is a container to create: the subset of run's options another
// engine needs.
type Spec struct {
	// Image is an image reference or id of the runtime's store.
	Image string
	// Name is the container's name; empty for a generated one.
	Name string
	// Cmd replaces the image's command when not empty.
	Cmd []string
	// Env are K=V over the image's environment.
	Env []string
	// Binds are SRC:DST[:ro] bind mounts, as run's volume=.
	Binds []string
	// Publish are [IP:]HOST:CTR[/udp] port forwards, as run's publish=.
	Publish []string
	// Restart is the restart policy, as run's restart= (no, on-failure[:N],
	// always, unless-stopped); empty is no.
	Restart string
	// Network is none, host, bridge (the default) or a network's name
	// (Service.EnsureNetwork).
	Network string
	// IP is the container's address on Network; empty for the next free.
	IP string
	// Hostname is the container's hostname.
	Hostname string
	// Memory is the memory limit in bytes (0: none).
	Memory int64
	// NanoCPUs is the CPU limit in billionths of a CPU (0: none).
	NanoCPUs int64
}

// Info is a container as the runtime sees it now.
type Info struct {
	ID       string
	Name     string
	ImageID  string
	IP       string
	Status   string // created, running, restarting, exited
	Running  bool
	Pid      int
	ExitCode int
}
