package etcdapi

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// etcd serves gRPC and HTTP/1.1 (health, version, metrics and the JSON
// gateway) on one port, telling them apart by the connection's first
// bytes, as its cmux does. split does the same over the guarded listener:
// a connection that opens with HTTP/2's preface ("PRI * HTTP/2.0") goes to
// the gRPC server, any other to the HTTP server.

// split reads connections from l and hands each to grpcL or httpL.
type split struct {
	l       net.Listener
	grpcL   *chanListener
	httpL   *chanListener
	closing chan struct{}
	once    sync.Once
}

// sniffTimeout bounds how long a connection may take to send its first
// bytes before it is dropped.
const sniffTimeout = 10 * time.Second

func newSplit(l net.Listener) *split {
	s := &split{l: l, closing: make(chan struct{})}
	s.grpcL = &chanListener{ch: make(chan net.Conn), addr: l.Addr(), closing: s.closing, close: s.Close}
	s.httpL = &chanListener{ch: make(chan net.Conn), addr: l.Addr(), closing: s.closing, close: s.Close}
	go s.run()
	return s
}

func (s *split) run() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			s.Close()
			return
		}
		go s.route(c)
	}
}

// route sniffs c and hands it on; a connection that says nothing in time
// is closed.
func (s *split) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	head, err := br.Peek(3)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	to := s.httpL
	if string(head) == "PRI" {
		to = s.grpcL
	}
	select {
	case to.ch <- &sniffed{Conn: c, r: br}:
	case <-s.closing:
		c.Close()
	}
}

// Close stops accepting: both listeners report closed.
func (s *split) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		err = s.l.Close()
	})
	return err
}

// sniffed is a connection whose first bytes were read into r.
type sniffed struct {
	net.Conn
	r *bufio.Reader
}

func (c *sniffed) Read(p []byte) (int, error) { return c.r.Read(p) }

// Unwrap is the guarded connection, for the HTTP server's actor lookup.
func (c *sniffed) Unwrap() net.Conn { return c.Conn }

// chanListener is a net.Listener fed by split.
type chanListener struct {
	ch      chan net.Conn
	addr    net.Addr
	closing chan struct{}
	close   func() error
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closing:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { return l.close() }
func (l *chanListener) Addr() net.Addr { return l.addr }
