package daemon

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/journal"
)

var userNames sync.Map // uid (int) -> name (string)

// userName returns the login name of uid, or "" when it has none.
func userName(uid int) string {
	if v, ok := userNames.Load(uid); ok {
		return v.(string)
	}
	name := ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	userNames.Store(uid, name)
	return name
}

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
