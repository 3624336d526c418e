package netprovider

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// onOwnThread runs f on a fresh goroutine locked to its OS thread and never
// unlocked: the runtime ends that thread with the goroutine, so a namespace
// f switched it into dies with it and no other goroutine ever runs there.
// netlink's NewHandleAt and its subscriptions switch the calling thread for
// a moment; they go through here.
func onOwnThread(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ch <- f()
	}()
	return <-ch
}

// inNamespace runs f on a thread of its own that has joined the namespace
// fd (netns.None(): the daemon's own). What only works in the caller's
// namespace, such as the /dev/net/tun ioctls that make a tun or tap link,
// goes through here.
func inNamespace(fd netns.NsHandle, f func() error) error {
	return onOwnThread(func() error {
		if fd.IsOpen() {
			if err := unix.Setns(int(fd), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("join the namespace: %w", err)
			}
		}
		return f()
	})
}
