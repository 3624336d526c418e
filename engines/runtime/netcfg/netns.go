package netcfg

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// addNamedNetns does what ip netns add does, at path: a new network
// namespace, bind mounted on an empty file so it outlives the thread that
// made it. Unlike ip netns add, the directory is not made a shared mount:
// runc opens the path in the daemon's mount namespace, as Docker's are.
func addNamedNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace file: %w", err)
	}
	f.Close()
	// unshare moves the calling thread into the new namespace: a thread of
	// its own, which dies with it.
	err = onOwnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount at %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace: %w", err)
	}
	return nil
}

// deleteNamedNetns does what ip netns del does: unmount and remove path.
// What is already gone is no error. The namespace itself ends when nothing
// else holds it (the container's processes, an open handle).
func deleteNamedNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}
