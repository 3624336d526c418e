package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/cairnhq/cairn/client/wire"
)

// maxInFlight bounds the requests one connection may have running at once.
const maxInFlight = 256

// maxQueued bounds the answer bytes queued behind a write in progress;
// past it, senders wait for the client to read.
const maxQueued = 256 << 10

// connReadBuffer is each connection's read buffer: a request line is
// short, and a longer one (an import part, up to wire.MaxLine) is gathered
// in pieces by readLine. Small, because a daemon holds thousands of
// connections (docs/benchmarks.md, "Limits").
const connReadBuffer = 8 << 10

// conn serves one client connection: requests may interleave, answers are
// written in the order they are produced.
type conn struct {
	srv  *Server
	c    *net.UnixConn
	peer Peer
	log  *slog.Logger

	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc

	// The answers' writer is whichever sender finds nobody writing: it
	// writes its line and then whatever others queued meanwhile, so a lone
	// answer costs no goroutine hand-off and a burst goes out in few writes.
	wmu     sync.Mutex
	wcond   sync.Cond // signalled when a write ends
	queued  []byte    // lines waiting for the writer in progress
	spare   []byte    // a written queue buffer, for reuse
	writing bool      // a sender is writing
	wfailed bool      // a write failed: the client is gone

	mu       sync.Mutex
	active   map[int64]*running
	nextRaw  int64
	readDone bool // no more requests will be read; streams end at once

	// lastRaw is closed when the latest raw (plain statement) request has
	// finished: raw lines run one after another, as a script typed into
	// socat expects; JSON envelopes interleave.
	lastRaw chan struct{}

	wg  sync.WaitGroup // running requests
	sem chan struct{}

	// owed are the streams this connection left an import unfinished in
	// (a part with more, no last part yet): their journal.import record
	// is written when the connection ends, if still owed.
	owed map[string]bool
}

// owesImport notes that an import into stream awaits its next part.
func (cn *conn) owesImport(stream string) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.owed == nil {
		cn.owed = map[string]bool{}
	}
	cn.owed[stream] = true
}

// settleImports writes the record of every import the connection left
// unfinished (journal.import with complete false): no imported event
// stays unattributed because its importer went away.
func (cn *conn) settleImports() {
	cn.mu.Lock()
	owed := cn.owed
	cn.owed = nil
	cn.mu.Unlock()
	for name := range owed {
		st := cn.srv.journal.Stream(name)
		if st == nil || !st.PendingImport() {
			continue
		}
		if _, err := st.SettleImport(context.WithoutCancel(cn.ctx)); err != nil {
			cn.log.Error("record an interrupted journal import", "stream", name, "err", err)
		}
	}
}

// running is a request in flight on a connection.
type running struct {
	cancel context.CancelFunc
	stream bool
}

func (s *Server) newConn(c *net.UnixConn, peer Peer) *conn {
	ctx, cancel := context.WithCancel(s.connCtx)
	cn := &conn{
		srv:    s,
		c:      c,
		peer:   peer,
		log:    s.log.With("peer_uid", peer.UID, "peer_pid", peer.PID),
		ctx:    ctx,
		cancel: cancel,
		active: make(map[int64]*running),
		sem:    make(chan struct{}, maxInFlight),
	}
	cn.wcond.L = &cn.wmu
	return cn
}

// serve reads requests until the client goes away or the server stops
// reading, then waits for the requests it started.
func (cn *conn) serve() {
	defer func() {
		// Every answer is written by its sender before the sender returns.
		cn.wg.Wait()
		cn.settleImports()
		cn.cancel()
		cn.c.Close()
	}()
	r := bufio.NewReaderSize(cn.c, connReadBuffer)
	for {
		line, err := readLine(r)
		var tooLong *lineTooLongError
		if errors.As(err, &tooLong) {
			var id int64 // a JSON envelope's id is lost with its line
			if tooLong.first != '{' {
				id = cn.rawID() // a raw line still takes its id
			}
			cn.send(encodeError(id, wire.Error{Code: wire.InvalidArgument, Message: fmt.Sprintf("request line longer than %d bytes; split it or send a smaller value", wire.MaxLine)}))
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				cn.log.Debug("connection read ended", "err", err)
			}
			// The client is gone or the daemon is stopping: end the streams
			// it had open; other requests finish and are answered if possible.
			cn.cancelStreams()
			return
		}
		if len(line) == 0 {
			continue
		}
		req, err := decodeRequest(line, cn.rawID)
		if err != nil {
			var we *wireError
			errors.As(err, &we)
			cn.send(encodeError(we.ID, wire.Error{Code: wire.InvalidArgument, Message: we.Msg}))
			continue
		}
		if req.Cancel {
			cn.cancelRequest(req.ID)
			continue
		}
		cn.start(req)
	}
}

// rawID hands out ids 1, 2, 3… to raw lines.
func (cn *conn) rawID() int64 {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.nextRaw++
	return cn.nextRaw
}

func (cn *conn) start(req wireRequest) {
	ctx, cancel := context.WithCancel(cn.ctx)
	cn.mu.Lock()
	if _, dup := cn.active[req.ID]; dup {
		cn.mu.Unlock()
		cancel()
		cn.send(encodeError(req.ID, wire.Error{Code: wire.InvalidArgument, Message: fmt.Sprintf("request id %d is already running on this connection; use a new id", req.ID)}))
		return
	}
	run := &running{cancel: cancel}
	cn.active[req.ID] = run
	cn.mu.Unlock()

	select {
	case cn.sem <- struct{}{}:
	case <-cn.ctx.Done():
		cn.finish(req.ID)
		return
	}
	var after, done chan struct{}
	if req.Raw {
		after, done = cn.lastRaw, make(chan struct{})
		cn.lastRaw = done
	}
	cn.wg.Add(1)
	cn.srv.workers.run(func() {
		defer cn.wg.Done()
		defer func() { <-cn.sem }()
		defer cn.finish(req.ID)
		if done != nil {
			defer close(done)
		}
		if after != nil {
			select {
			case <-after:
			case <-ctx.Done():
				return
			}
		}
		cn.srv.execute(ctx, cn, req.ID, req.DSL, run)
	})
}

func (cn *conn) finish(id int64) {
	cn.mu.Lock()
	if r, ok := cn.active[id]; ok {
		r.cancel()
		delete(cn.active, id)
	}
	cn.mu.Unlock()
}

func (cn *conn) cancelRequest(id int64) {
	cn.mu.Lock()
	r, ok := cn.active[id]
	cn.mu.Unlock()
	if ok {
		r.cancel()
	}
}

// cancelStreams ends every open stream of the connection, and every
// stream that starts later.
func (cn *conn) cancelStreams() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.readDone = true
	for _, r := range cn.active {
		if r.stream {
			r.cancel()
		}
	}
}

// send writes an answer line, or queues it behind the write in progress.
// It reports false once the client is gone.
func (cn *conn) send(line []byte) bool {
	if len(line) == 0 {
		return true
	}
	cn.wmu.Lock()
	for cn.writing && !cn.wfailed && len(cn.queued) >= maxQueued {
		cn.wcond.Wait()
	}
	if cn.wfailed {
		cn.wmu.Unlock()
		return false
	}
	if cn.writing {
		cn.queued = append(cn.queued, line...)
		cn.wmu.Unlock()
		return true
	}
	cn.writing = true
	buf := line
	for {
		cn.wmu.Unlock()
		_, err := cn.c.Write(buf)
		cn.wmu.Lock()
		if err != nil {
			cn.wfailed, cn.writing, cn.queued, cn.spare = true, false, nil, nil
			cn.wcond.Broadcast()
			cn.wmu.Unlock()
			cn.fail(err)
			return false
		}
		if &buf[0] != &line[0] && cap(buf) <= maxQueued {
			cn.spare = buf[:0]
		}
		if len(cn.queued) == 0 {
			break
		}
		buf, cn.queued, cn.spare = cn.queued, cn.spare, nil
		cn.wcond.Broadcast() // room in the queue again
	}
	cn.writing = false
	cn.wcond.Broadcast()
	cn.wmu.Unlock()
	return true
}

// fail ends a connection whose client stopped reading or vanished; its
// requests are canceled and their answers dropped.
func (cn *conn) fail(err error) {
	cn.log.Debug("connection write failed", "err", err)
	cn.cancel()
	cn.c.Close()
}

// lineTooLongError is a request line over wire.MaxLine, consumed to its end;
// first is its first non-space byte, which tells a JSON envelope from a
// raw statement.
type lineTooLongError struct{ first byte }

func (e *lineTooLongError) Error() string { return "line too long" }

// readLine reads one newline-terminated line of at most wire.MaxLine bytes. An
// overlong line is consumed to its end and reported as errLineTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	var tooLong *lineTooLongError
	for {
		frag, err := r.ReadSlice('\n')
		if tooLong == nil {
			if len(buf)+len(frag) > wire.MaxLine+1 {
				tooLong = &lineTooLongError{first: firstNonSpace(append(buf, frag...))}
				buf = nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong != nil {
				return nil, tooLong
			}
			return trimEOL(buf), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			if err == io.EOF && len(buf) > 0 && tooLong == nil {
				return trimEOL(buf), nil
			}
			return nil, err
		}
	}
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return c
		}
	}
	return 0
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
