// Package ascaller runs filesystem work with a caller's filesystem
// credentials, so that the kernel, not a permission pre-check, judges what
// a non-root caller may read or write through the daemon: directory search
// permission, symlinks, ACLs and every component of a path, at the moment
// of the access (no time-of-check to time-of-use gap).
//
// The daemon runs as root. For a non-root caller, Do runs a function on an
// OS thread of its own whose fsuid, fsgid and supplementary groups are the
// caller's (Linux keeps them per thread, and changing fsuid from 0 drops
// the filesystem capabilities of that thread). The thread is never handed
// back to the Go scheduler: it exits with the goroutine, so no other
// goroutine ever runs with the caller's credentials or root's lost.
package ascaller

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Cred is who the work is done for.
type Cred struct {
	UID, GID int
	Groups   []int // supplementary groups; nil means none
}

// ErrCannotSwitch reports that the daemon cannot take on the caller's
// credentials: it is not root, and the caller is another user.
var ErrCannotSwitch = errors.New("the daemon is not root and cannot act as another user")

// Needed reports whether work for c must run with c's credentials: the
// caller is not the daemon's own user.
func Needed(c Cred) bool {
	return c.UID != os.Geteuid()
}

// Do runs fn with c's filesystem credentials, or directly when c is the
// daemon's own user. A panic in fn is returned as an error.
func Do(c Cred, fn func() error) error {
	if !Needed(c) {
		return fn()
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("act as uid %d: %w", c.UID, ErrCannotSwitch)
	}
	done := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread ends with this goroutine.
		runtime.LockOSThread()
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic while acting as uid %d: %v", c.UID, p)
			}
		}()
		if err := become(c); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// become gives the calling thread c's groups, fsgid and fsuid, and checks
// that the kernel took them (setfsuid reports no error on refusal).
func become(c Cred) error {
	if c.UID < 0 || c.GID < 0 {
		return fmt.Errorf("act as uid %d gid %d: the caller has no local user", c.UID, c.GID)
	}
	if err := unix.Setgroups(c.Groups); err != nil {
		return fmt.Errorf("act as uid %d: set groups: %w", c.UID, err)
	}
	unix.SetfsgidRetGid(c.GID)
	unix.SetfsuidRetUid(c.UID)
	// An invalid id changes nothing and returns the current value.
	if got, _ := unix.SetfsgidRetGid(-1); got != c.GID {
		return fmt.Errorf("act as uid %d: fsgid is %d, want %d", c.UID, got, c.GID)
	}
	if got, _ := unix.SetfsuidRetUid(-1); got != c.UID {
		return fmt.Errorf("act as uid %d: fsuid is %d, want %d", c.UID, got, c.UID)
	}
	return nil
}
