package daemon

import (
	"os"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/journal"
)

// procComm returns the command name of pid as /proc shows it, or "".
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Actor returns the journal actor for changes this peer causes over the socket.
func (p Peer) Actor() journal.Actor {
	return journal.Actor{UID: p.UID, GID: p.GID, PID: p.PID, User: p.User, Comm: p.Comm, Via: "socket", Groups: p.Groups}
}
