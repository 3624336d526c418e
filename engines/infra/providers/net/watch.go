package netprovider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// Scope returns the namespace a link, address or route lives in; a
// namespace itself is not watched.
func (p *Provider) Scope(typ string, v provider.Values) (string, bool) {
	switch typ {
	case "net_link", "net_address", "net_route":
		return v.String("namespace"), true
	}
	return "", false
}

// watchBuffer is the receive buffer asked for each subscription, so a burst
// of changes (a container start) does not overflow it.
const watchBuffer = 1 << 20

// Watch subscribes to link, address and route changes in each namespace of
// scopes and calls changed, one call at a time, for each. A namespace that
// does not exist is skipped and reported.
func (p *Provider) Watch(ctx context.Context, scopes []string, changed func(provider.Change)) []error {
	var mu sync.Mutex
	var errs []error
	seen := map[string]bool{}
	for _, ns := range scopes {
		if seen[ns] {
			continue
		}
		seen[ns] = true
		notify := func() {
			mu.Lock()
			defer mu.Unlock()
			changed(provider.Change{Scope: ns})
		}
		if err := watchNamespace(ctx, ns, notify); err != nil {
			errs = append(errs, fmt.Errorf("watch namespace %q: %w", ns, err))
		}
	}
	return errs
}

// watcher follows one namespace's rtnetlink notifications until its
// context ends.
type watcher struct {
	fd     netns.NsHandle // the named namespace, held while subscriptions may be made; None for the daemon's
	notify func()
	done   chan struct{} // closed when the context ends: netlink closes the sockets
	wg     sync.WaitGroup
}

// watchNamespace subscribes in ns and returns once subscribed.
func watchNamespace(ctx context.Context, ns string, notify func()) error {
	if err := checkNamespaceName(ns); err != nil {
		return err
	}
	w := &watcher{fd: netns.None(), notify: notify, done: make(chan struct{})}
	if ns != "" {
		fd, _, err := openNamespace(ns)
		if err != nil {
			return err
		}
		w.fd = fd
	}
	subs := []func() error{w.links(), w.addrs(), w.routes()}
	// Subscribing in another namespace switches the calling thread for a
	// moment: do it on a thread of its own that dies afterwards.
	err := onOwnThread(func() error {
		for _, sub := range subs {
			if err := sub(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.stop()
		return err
	}
	go func() {
		<-ctx.Done()
		w.stop()
	}()
	return nil
}

// stop ends the subscriptions and returns once their readers are done.
func (w *watcher) stop() {
	close(w.done)
	w.wg.Wait()
	w.fd.Close()
}

func (w *watcher) stopped() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// onError is the subscriptions' error callback. Past a stop it is the
// socket closing under a receive; before, a notification may have been
// lost (ENOBUFS), so something may have changed.
func (w *watcher) onError(error) {
	if !w.stopped() {
		w.notify()
	}
}

func (w *watcher) nsp() *netns.NsHandle {
	if !w.fd.IsOpen() {
		return nil
	}
	return &w.fd
}

// follow returns a subscription maker whose reader calls notify for each
// update. netlink ends a subscription on a receive error (ENOBUFS when the
// kernel dropped notifications): the reader subscribes again and notifies,
// since what was dropped is unknown.
func follow[T any](w *watcher, subscribe func(ch chan T) error) func() error {
	return func() error {
		ch := make(chan T, 64)
		if err := subscribe(ch); err != nil {
			return err
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				for range ch {
					w.notify()
				}
				select {
				case <-w.done:
					return
				case <-time.After(100 * time.Millisecond):
				}
				ch = make(chan T, 64)
				if err := onOwnThread(func() error { return subscribe(ch) }); err != nil {
					return
				}
				w.notify()
			}
		}()
		return nil
	}
}

func (w *watcher) links() func() error {
	return follow(w, func(ch chan netlink.LinkUpdate) error {
		return netlink.LinkSubscribeWithOptions(ch, w.done, netlink.LinkSubscribeOptions{
			Namespace: w.nsp(), ErrorCallback: w.onError, ReceiveBufferSize: watchBuffer,
		})
	})
}

func (w *watcher) addrs() func() error {
	return follow(w, func(ch chan netlink.AddrUpdate) error {
		return netlink.AddrSubscribeWithOptions(ch, w.done, netlink.AddrSubscribeOptions{
			Namespace: w.nsp(), ErrorCallback: w.onError, ReceiveBufferSize: watchBuffer,
		})
	})
}

func (w *watcher) routes() func() error {
	return follow(w, func(ch chan netlink.RouteUpdate) error {
		return netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{
			Namespace: w.nsp(), ErrorCallback: w.onError, ReceiveBufferSize: watchBuffer,
		})
	})
}
