package netcfg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Timeouts of the proxy, docker-proxy's.
const (
	dialTimeout = 10 * time.Second
	udpIdle     = 90 * time.Second // a UDP flow with no reply for this long ends
)

// Forward is one published port: a listener in the daemon that copies each
// connection (for UDP, each client's flow) to a container's port and back,
// as docker-proxy does. The proxy's own connections to the container come
// from the bridge's namespace, so published ports work whatever address
// the listener has, loopback included.
type Forward struct {
	proto string
	addr  net.Addr // what the listener is bound to
	ctr   netip.AddrPort
	n     *Network
	log   *slog.Logger

	ln net.Listener   // tcp
	pc net.PacketConn // udp

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup // the accept or read loop and each connection

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{} // open connections, both sides, closed by Close
	stop   func() bool            // unregisters the Close on the caller's context's end
}

var _ io.Closer = (*Forward)(nil)

// Publish forwards host, an address of the bridge's namespace (port 0 picks
// a free one: Addr tells it), to ctr for proto "tcp" or "udp", until ctx
// ends or Close is called. A port already taken is an error naming it.
func (n *Network) Publish(ctx context.Context, proto string, host, ctr netip.AddrPort) (*Forward, error) {
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("publish %s: protocol %q: want tcp or udp", host, proto)
	}
	if !host.IsValid() || !ctr.IsValid() {
		return nil, fmt.Errorf("publish %s to %s: both addresses need an IP and a port", host, ctr)
	}
	f := &Forward{proto: proto, ctr: ctr, n: n, conns: map[io.Closer]struct{}{},
		log: n.log.With("publish", host.String(), "proto", proto, "container", ctr.String())}
	// Held until the forward is registered, so Close either sees it or
	// comes first: a forward never uses the namespace handle after Close.
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("publish %s: network closed", host)
	}
	err := n.inHome(func() (err error) {
		var lc net.ListenConfig
		if proto == "tcp" {
			f.ln, err = lc.Listen(ctx, "tcp", host.String())
		} else {
			f.pc, err = lc.ListenPacket(ctx, "udp", host.String())
		}
		return err
	})
	if errors.Is(err, unix.EADDRINUSE) {
		return nil, fmt.Errorf("publish %s: %w (another process or published port holds it: choose another host port)", host, unix.EADDRINUSE)
	}
	if err != nil {
		return nil, fmt.Errorf("publish %s/%s: %w", host, proto, err)
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	n.forwards[f] = struct{}{}
	f.wg.Add(1)
	if proto == "tcp" {
		f.addr = f.ln.Addr()
		go f.acceptTCP()
	} else {
		f.addr = f.pc.LocalAddr()
		go f.readUDP()
	}
	// Close takes f.mu, held here: when ctx is already done, AfterFunc's
	// goroutine sees stop set.
	f.mu.Lock()
	f.stop = context.AfterFunc(ctx, func() { f.Close() })
	f.mu.Unlock()
	f.log.Info("published port", "addr", f.addr)
	return f, nil
}

// Addr returns the address the forward listens on.
func (f *Forward) Addr() net.Addr { return f.addr }

// Close stops listening, closes every forwarded connection and returns once
// all the forward's goroutines have ended.
func (f *Forward) Close() error {
	f.once.Do(func() {
		f.cancel()
		f.mu.Lock()
		f.closed = true
		conns, stop := f.conns, f.stop
		f.conns = nil
		f.mu.Unlock()
		stop()
		f.closeListener()
		for c := range conns {
			c.Close()
		}
		f.wg.Wait()
		f.n.mu.Lock()
		delete(f.n.forwards, f)
		f.n.mu.Unlock()
		f.log.Info("unpublished port", "addr", f.addr)
	})
	return nil
}

func (f *Forward) closeListener() {
	if f.ln != nil {
		f.ln.Close()
	} else {
		f.pc.Close()
	}
}

// track registers c to be closed by Close; false when Close has begun (the
// caller closes c itself).
func (f *Forward) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forward) untrack(c io.Closer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// dial connects to the container from the bridge's namespace.
func (f *Forward) dial() (net.Conn, error) {
	var c net.Conn
	err := f.n.inHome(func() (err error) {
		d := net.Dialer{Timeout: dialTimeout}
		c, err = d.DialContext(f.ctx, f.proto, f.ctr.String())
		return err
	})
	return c, err
}

// pause waits a little after an error that may pass (out of file
// descriptors), or until Close; false when Close came.
func (f *Forward) pause() bool {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (f *Forward) acceptTCP() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.ctx.Err() != nil {
				return
			}
			f.log.Warn("accept", "err", err)
			if !f.pause() {
				return
			}
			continue
		}
		if !f.track(c) {
			c.Close()
			return
		}
		// This goroutine holds a count, so Add never races Close's Wait.
		f.wg.Add(1)
		go f.proxyTCP(c)
	}
}

// proxyTCP copies between a client and the container both ways, passing on
// each side's half close, until both directions end or Close closes them.
func (f *Forward) proxyTCP(client net.Conn) {
	defer f.wg.Done()
	defer f.untrack(client)
	defer client.Close()
	ctr, err := f.dial()
	if err != nil {
		f.log.Warn("connect to the container", "client", client.RemoteAddr(), "err", err)
		return
	}
	if !f.track(ctr) {
		ctr.Close()
		return
	}
	defer f.untrack(ctr)
	defer ctr.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(ctr, client)
		closeWrite(ctr)
	}()
	io.Copy(client, ctr)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// readUDP reads the clients' datagrams and sends each through its client's
// flow: a socket connected to the container, whose replies go back to that
// client.
func (f *Forward) readUDP() {
	defer f.wg.Done()
	flows := map[netip.AddrPort]net.Conn{}
	var fmu sync.Mutex
	buf := make([]byte, 64<<10)
	for {
		n, from, err := f.pc.(*net.UDPConn).ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.ctx.Err() != nil {
				return
			}
			f.log.Warn("read", "err", err)
			if !f.pause() {
				return
			}
			continue
		}
		fmu.Lock()
		flow := flows[from]
		fmu.Unlock()
		if flow == nil {
			flow, err = f.dial()
			if err != nil {
				f.log.Warn("connect to the container", "client", from, "err", err)
				continue
			}
			if !f.track(flow) {
				flow.Close()
				return
			}
			fmu.Lock()
			flows[from] = flow
			fmu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.replyUDP(flow, from)
				fmu.Lock()
				delete(flows, from)
				fmu.Unlock()
				f.untrack(flow)
				flow.Close()
			}()
		}
		if _, err := flow.Write(buf[:n]); err != nil {
			f.log.Debug("send to the container", "client", from, "err", err)
		}
	}
}

// replyUDP sends the container's replies on flow back to client, until the
// flow is idle for udpIdle or closed.
func (f *Forward) replyUDP(flow net.Conn, client netip.AddrPort) {
	pc := f.pc.(*net.UDPConn)
	buf := make([]byte, 64<<10)
	for {
		flow.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := flow.Read(buf)
		if err != nil {
			return
		}
		if _, err := pc.WriteToUDPAddrPort(buf[:n], client); err != nil {
			return
		}
	}
}
