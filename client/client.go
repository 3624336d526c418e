// Package client talks to a cairn daemon over its unix socket.
//
// One Client holds one connection. Requests are sent as JSON envelopes with
// the client's own increasing ids, and a single reader goroutine routes the
// daemon's NDJSON answers to the request they belong to, so any number of
// Do and Stream calls may run at once on one Client: a long-lived stream (a
// tail or a watch) stays open while other statements come and go.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/client/wire"
)

// MaxLine is the longest line the wire protocol allows, in either direction.
const MaxLine = wire.MaxLine

// scanLimit is the longest answer line read. Answers may exceed MaxLine:
// a 1.5 MiB value of control characters is six times that as JSON.
const scanLimit = 16 << 20

// ErrClosed is returned for requests that were still running, or started,
// after Close.
var ErrClosed = errors.New("client closed")

// Client is a connection to the daemon. It is safe for concurrent use.
type Client struct {
	socket string
	conn   net.Conn
	nextID atomic.Int64

	wmu sync.Mutex // serialises writes so request lines never interleave

	mu         sync.Mutex
	pending    map[int64]*request // requests waiting for their final answer
	err        error              // set when the reader has stopped; later requests fail with it
	closing    bool               // Close was called
	readerDone chan struct{}
}

// Dial connects to the daemon listening on socket; an empty socket means
// DefaultSocket(). Any failure is returned as an *UnreachableError.
func Dial(ctx context.Context, socket string) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, &UnreachableError{Socket: socket, Err: err}
	}
	c := &Client{
		socket:     socket,
		conn:       conn,
		pending:    make(map[int64]*request),
		readerDone: make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// Socket returns the path the client is connected to.
func (c *Client) Socket() string { return c.socket }

// Close closes the connection and waits for the reader to stop. Requests
// still running end with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.mu.Unlock()
	err := c.conn.Close()
	<-c.readerDone
	if already || errors.Is(err, net.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("close connection to %s: %w", c.socket, err)
	}
	return nil
}

// Result holds every answer of a statement run with Do, in arrival order
// within each kind.
type Result struct {
	Rows   []json.RawMessage // "row" answers
	Events []json.RawMessage // "event" answers
	Lines  []string          // "line" answers (chisel output)
	// Output is a process's output, stdout and stderr in the order
	// answered; Exit its exit status (run and exec without detach).
	Output []wire.Output
	Exit   *int
}

// Do runs a statement and collects its answers until the daemon reports it
// done. A daemon error is returned as *ParseError or *DaemonError; a lost
// connection as *UnreachableError. If ctx ends first, Do asks the daemon to
// cancel the statement and returns ctx's error without waiting for it.
func (c *Client) Do(ctx context.Context, dsl string) (*Result, error) {
	r, err := c.start(ctx, dsl)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for {
		a, err := r.next(ctx)
		switch {
		case err == io.EOF:
			return res, nil
		case err != nil && err == ctx.Err():
			_ = c.cancel(r) // best effort: the caller has stopped listening
			return nil, fmt.Errorf("statement %q: %w", dsl, err)
		case err != nil:
			return nil, err
		case a.Row != nil:
			res.Rows = append(res.Rows, a.Row)
		case a.Event != nil:
			res.Events = append(res.Events, a.Event)
		case a.HasLine:
			res.Lines = append(res.Lines, a.Line)
		case a.Output != nil:
			res.Output = append(res.Output, *a.Output)
		case a.Exit != nil:
			res.Exit = a.Exit
		}
	}
}

// Answer is one answer of a streamed statement; exactly one of Row, Event
// and Line (with HasLine) is set.
type Answer struct {
	Row     json.RawMessage // a result row
	Event   json.RawMessage // an event (events, tail, kv watch)
	Line    string          // a line of plain text (chisel output)
	HasLine bool            // Line is set (it may be empty)
	Output  *wire.Output    // a piece of a process's output (run, exec)
	Exit    *int            // the exit status of the process a statement ran
}

// Stream is a running statement whose answers are read one by one with Next.
type Stream struct {
	c *Client
	r *request
}

// Stream starts a statement and returns its answers as they come. When ctx
// ends, the statement is canceled as if by Cancel.
func (c *Client) Stream(ctx context.Context, dsl string) (*Stream, error) {
	r, err := c.start(ctx, dsl)
	if err != nil {
		return nil, err
	}
	s := &Stream{c: c, r: r}
	stop := context.AfterFunc(ctx, func() { _ = s.Cancel() })
	r.setStop(stop)
	return s, nil
}

// ID returns the request id the statement was sent with.
func (s *Stream) ID() int64 { return s.r.id }

// Next returns the next answer. It returns io.EOF once the daemon reports
// the statement done, and the statement's error (*ParseError, *DaemonError,
// *UnreachableError, ErrClosed) otherwise. Next blocks until an answer comes;
// it must not be called from several goroutines at once.
func (s *Stream) Next() (Answer, error) {
	return s.r.next(context.Background())
}

// Cancel asks the daemon to end the statement. Answers not yet read are
// dropped, and Next then returns io.EOF or a *DaemonError with code
// "canceled", whichever the daemon answers. Canceling a finished statement
// does nothing.
func (s *Stream) Cancel() error {
	return s.c.cancel(s.r)
}

// start registers a request and sends it.
func (c *Client) start(ctx context.Context, dsl string) (*request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("statement %q: %w", dsl, err)
	}
	r := &request{id: c.nextID.Add(1), notify: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	// Registered before sending, so no answer can arrive for an unknown id.
	c.pending[r.id] = r
	c.mu.Unlock()
	if err := c.send(wire.Request{ID: r.id, DSL: dsl}); err != nil {
		c.mu.Lock()
		delete(c.pending, r.id)
		c.mu.Unlock()
		return nil, err
	}
	return r, nil
}

// cancel drops r's unread answers and sends a cancel for it.
func (c *Client) cancel(r *request) error {
	r.mu.Lock()
	if r.finished || r.canceled {
		r.mu.Unlock()
		return nil
	}
	r.canceled = true
	r.queue = nil
	r.mu.Unlock()
	return c.send(wire.Request{ID: r.id, Cancel: true})
}

// send writes one request line.
func (c *Client) send(env wire.Request) error {
	line, ok := appendPlainEnvelope(make([]byte, 0, len(env.DSL)+32), env)
	if !ok {
		var err error
		if line, err = json.Marshal(env); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		line = append(line, '\n')
	}
	if len(line) > MaxLine {
		return fmt.Errorf("statement is %d bytes; the limit is %d", len(env.DSL), MaxLine)
	}
	c.wmu.Lock()
	_, err := c.conn.Write(line)
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return ErrClosed
		}
		return &UnreachableError{Socket: c.socket, Err: fmt.Errorf("send request %d: %w", env.ID, err)}
	}
	return nil
}

// appendPlainEnvelope appends env's line, newline included, byte for byte
// as json.Marshal writes it, when its statement needs no escaping; ok is
// false otherwise.
func appendPlainEnvelope(dst []byte, env wire.Request) (line []byte, ok bool) {
	if env.Cancel {
		return nil, false
	}
	for i := 0; i < len(env.DSL); i++ {
		// Everything json.Marshal escapes or replaces is below 0x20, one
		// of "\<>&, or outside ASCII (invalid UTF-8, U+2028, U+2029).
		if b := env.DSL[i]; b < 0x20 || b >= 0x80 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
			return nil, false
		}
	}
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, env.ID, 10)
	if env.DSL != "" {
		dst = append(dst, `,"dsl":"`...)
		dst = append(dst, env.DSL...)
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...), true
}

// read routes answer lines to their requests until the connection ends. It
// never blocks on a request, so a stream nobody reads cannot stall the others.
func (c *Client) read() {
	defer close(c.readerDone)
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 64<<10), scanLimit)
	var cause error
	// refused is the daemon's last word about the connection itself (an
	// error answer with id 0), such as a connection limit: when the
	// connection then ends, that is what every pending request gets.
	var refused error
	for sc.Scan() {
		var m wire.Answer
		if decodePlainAnswer(sc.Bytes(), &m) {
			c.dispatch(&m)
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			// The stream is out of step with the protocol; nothing after this
			// line can be trusted to belong to the request it names.
			cause = fmt.Errorf("bad answer line: %w", err)
			break
		}
		if m.ID == 0 && m.Error != nil {
			refused = typedError(m.Error)
			continue
		}
		c.dispatch(&m)
	}
	if cause == nil {
		cause = sc.Err()
	}
	if cause == nil {
		cause = errors.New("connection closed by the daemon")
	}
	c.mu.Lock()
	var err error = &UnreachableError{Socket: c.socket, Err: fmt.Errorf("connection lost: %w", cause)}
	switch {
	case c.closing:
		err = ErrClosed
	case refused != nil:
		err = refused
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	_ = c.conn.Close()
	for _, r := range pending {
		r.finish(err)
	}
}

// decodePlainAnswer decodes the answers the daemon sends most,
// {"id":N,"row":{…}}, {"id":N,"event":{…}} and {"id":N,"done":true}, into
// m exactly as json.Unmarshal would; it reports false for any other line,
// which then takes json.Unmarshal.
func decodePlainAnswer(b []byte, m *wire.Answer) bool {
	const head = `{"id":`
	if !bytes.HasPrefix(b, []byte(head)) || b[len(b)-1] != '}' {
		return false
	}
	i := len(head)
	if i >= len(b) || b[i] < '1' || b[i] > '9' {
		return false
	}
	var id int64
	for start := i; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start == 18 {
			return false // may not fit an int64
		}
		id = id*10 + int64(b[i]-'0')
	}
	rest := b[i : len(b)-1] // ,"KIND":PAYLOAD
	var dst *json.RawMessage
	switch {
	case string(rest) == `,"done":true`:
		*m = wire.Answer{ID: id, Done: true}
		return true
	case bytes.HasPrefix(rest, []byte(`,"event":`)):
		rest, dst = rest[len(`,"event":`):], &m.Event
	case bytes.HasPrefix(rest, []byte(`,"row":`)):
		rest, dst = rest[len(`,"row":`):], &m.Row
	default:
		return false
	}
	// An object, whole and valid: then the last brace is the envelope's.
	if len(rest) < 2 || rest[0] != '{' || rest[len(rest)-1] != '}' || !json.Valid(rest) {
		return false
	}
	*m = wire.Answer{ID: id}
	*dst = append(json.RawMessage(nil), rest...)
	return true
}

// dispatch hands one answer to its request.
func (c *Client) dispatch(m *wire.Answer) {
	final := m.Done || m.Error != nil
	c.mu.Lock()
	r := c.pending[m.ID]
	if final {
		delete(c.pending, m.ID)
	}
	c.mu.Unlock()
	if r == nil {
		return // an id we never sent, or an answer after the final one
	}
	switch {
	case m.Error != nil:
		r.finish(typedError(m.Error))
	case m.Done:
		r.finish(io.EOF)
	case m.Row != nil:
		r.push(Answer{Row: m.Row})
	case m.Event != nil:
		r.push(Answer{Event: m.Event})
	case m.Line != nil:
		r.push(Answer{Line: *m.Line, HasLine: true})
	case m.Output != nil:
		r.push(Answer{Output: m.Output})
	case m.Exit != nil:
		r.push(Answer{Exit: m.Exit})
	}
}

// request is one statement in flight. Its queue is unbounded so that the
// reader never waits for a slow consumer.
type request struct {
	id     int64
	notify chan struct{} // capacity 1: wakes the consumer after a push or finish

	mu       sync.Mutex
	queue    []Answer
	finished bool
	err      error // final outcome: io.EOF after done
	canceled bool  // answers arriving after a cancel are dropped
	stop     func() bool
}

func (r *request) push(a Answer) {
	r.mu.Lock()
	if r.finished || r.canceled {
		r.mu.Unlock()
		return
	}
	r.queue = append(r.queue, a)
	r.mu.Unlock()
	r.wake()
}

func (r *request) finish(err error) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished = true
	r.err = err
	stop := r.stop
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	r.wake()
}

// setStop records the function that detaches r from its context, calling it
// at once if r has already finished.
func (r *request) setStop(stop func() bool) {
	r.mu.Lock()
	finished := r.finished
	r.stop = stop
	r.mu.Unlock()
	if finished {
		stop()
	}
}

func (r *request) wake() {
	select {
	case r.notify <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// next returns the next queued answer, or the final outcome once the queue is
// empty. It gives up with ctx's error when ctx ends first.
func (r *request) next(ctx context.Context) (Answer, error) {
	for {
		r.mu.Lock()
		if len(r.queue) > 0 {
			a := r.queue[0]
			r.queue[0] = Answer{}
			r.queue = r.queue[1:]
			r.mu.Unlock()
			return a, nil
		}
		if r.finished {
			err := r.err
			r.mu.Unlock()
			return Answer{}, err
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-ctx.Done():
			return Answer{}, ctx.Err()
		}
	}
}
