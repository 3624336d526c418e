package client

import (
	"os"
	"path/filepath"
	"strconv"
)

// SocketEnv is the environment variable that overrides the default socket path.
const SocketEnv = "CAIRN_SOCKET"

// DefaultSocket returns the socket path the daemon listens on by default:
// $CAIRN_SOCKET if set, /run/cairn/cairn.sock for root, else
// $XDG_RUNTIME_DIR/cairn.sock, falling back to /tmp/cairn-UID/cairn.sock when
// XDG_RUNTIME_DIR is unset.
func DefaultSocket() string {
	if s := os.Getenv(SocketEnv); s != "" {
		return s
	}
	if os.Geteuid() == 0 {
		return "/run/cairn/cairn.sock"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "cairn.sock")
	}
	return filepath.Join("/tmp", "cairn-"+strconv.Itoa(os.Geteuid()), "cairn.sock")
}
