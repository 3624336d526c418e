package daemon

import (
	"net"

	"github.com/cairnhq/cairn/internal/peercred"
	"github.com/cairnhq/cairn/journal"
)

// httpActor is the actor of what an HTTP caller at remote causes
// (internal/peercred: the kernel's owner of a loopback caller's socket).
func httpActor(local, remote net.Addr) journal.Actor {
	return peercred.TCPActor(local, remote, "http")
}
