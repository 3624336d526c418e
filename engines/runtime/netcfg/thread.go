package netcfg

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// onOwnThread runs f on a fresh goroutine locked to its OS thread and never
// unlocked: the runtime ends that thread with the goroutine, so a namespace
// f switched it into dies with it and no other goroutine ever runs there.
// (The same as the infra net provider's; a copy rather than a shared
// package for eight lines.)
func onOwnThread(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ch <- f()
	}()
	return <-ch
}

// inNamespace runs f on a thread of its own that has joined the namespace
// fd. Sockets f opens, processes it starts and /proc/sys/net files it
// writes belong to that namespace.
func inNamespace(fd netns.NsHandle, f func() error) error {
	return onOwnThread(func() error {
		if err := unix.Setns(int(fd), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join the network namespace: %w", err)
		}
		return f()
	})
}

// inHome runs f in the bridge's namespace.
func (n *Network) inHome(f func() error) error { return inNamespace(n.home, f) }
