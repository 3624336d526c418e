// Package daemon runs cairn's daemon: the unix socket and its wire
// protocol, the verb table, the journal, the embedded NATS server and the
// daemon's lifecycle.
package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/daemon/authz"
	"github.com/cairnhq/cairn/daemon/ui"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/scripts"
)

// Version is cairn's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Config is how a daemon runs. Zero values mean the defaults of DESIGN.md.
type Config struct {
	DataDir  string
	Socket   string
	NATS     string // listen address, or "off"
	NATSAuth string // "token" (default) or "none"
	HTTP     string // the HTTP listen address, or "off"
	Logger   *slog.Logger

	// Reserve is the free disk space below which appends fail.
	Reserve uint64
	// CaptureRetention bounds the capture stream.
	CaptureRetention journal.Retention
	// DrainTimeout bounds how long a stop waits for in-flight requests.
	DrainTimeout time.Duration
	// Modules are the engines to run (engines.New(), with their flags parsed).
	Modules []engines.Module
	// ChiselPaths are searched for chisels after the built-ins, in order
	// (/etc/cairn/chisels, then --chisel-path).
	ChiselPaths []string
	// AllowUnsafeScripts gives chisels the full os and io libraries.
	AllowUnsafeScripts bool
	// Policy decides what non-root callers may do (nil: the default
	// policy; docs/security.md).
	Policy *authz.Policy

	// SocketGroup, when set, owns the socket (mode 0660), so its members
	// may connect: a group name or a numeric gid.
	SocketGroup string
	// MaxConns and MaxConnsPerUID cap client connections in total and per
	// non-root uid (0: the defaults). The total is also bounded by the
	// descriptors the process may open.
	MaxConns, MaxConnsPerUID int

	// ChiselCallbackTime and ChiselMemory bound each chisel run (0: the
	// scripts package's defaults, 5 s and 256 MiB).
	ChiselCallbackTime time.Duration
	ChiselMemory       int64

	// TrustKeys are the keys, beside the node's own (<data>/node.key),
	// whose signed capture files journal import accepts without force.
	TrustKeys []ed25519.PublicKey
}

// Server is a running daemon.
type Server struct {
	cfg     Config
	log     *slog.Logger
	node    string
	started time.Time

	journal *journal.Journal
	chisels *scripts.Library
	verbs   *dsl.Table

	requests requestStats // by verb, for /metrics
	bus      *bus
	// pub is the bus once it started, for the modules' Publish (their
	// goroutines read it while Run sets it).
	pub  atomic.Pointer[bus]
	http *httpListener
	// dashboard is the web UI on the HTTP listener (daemon/ui).
	dashboard *ui.Server

	limits    *connLimits
	socketGID int // the socket's group from --socket-group, or -1

	connCtx    context.Context
	connCancel context.CancelFunc
	workers    *workers // run the connections' requests
	conns      sync.WaitGroup
	connsMu    sync.Mutex
	open       map[*conn]struct{}
}

// Run starts a daemon and serves until ctx is canceled, then stops it
// cleanly: in-flight requests drain, streams end, the journal closes.
// ready, when not nil, is called once the socket accepts connections.
func Run(ctx context.Context, cfg Config, ready func(*Server)) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NATS == "" {
		cfg.NATS = "127.0.0.1:4222"
	}
	if cfg.HTTP == "" {
		cfg.HTTP = "127.0.0.1:8500"
	}
	if cfg.NATSAuth == "" {
		cfg.NATSAuth = "token"
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerUID == 0 {
		cfg.MaxConnsPerUID = DefaultMaxConnsPerUID
	}
	socketGID, err := lookupGroup(cfg.SocketGroup)
	if err != nil {
		return err
	}
	node, _ := os.Hostname()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		node:      node,
		started:   time.Now(),
		open:      make(map[*conn]struct{}),
		socketGID: socketGID,
	}
	s.verbs = buildTable(s, cfg.Modules)
	// Modules start after the modules whose services they require, and stop
	// in the reverse order.
	order, err := engines.StartOrder(cfg.Modules)
	if err != nil {
		return fmt.Errorf("engines: %w", err)
	}
	s.chisels = scripts.NewLibrary(scripts.Options{
		Paths:       cfg.ChiselPaths,
		AllowUnsafe: cfg.AllowUnsafeScripts,
		CallbackCPU: cfg.ChiselCallbackTime,
		MemoryLimit: cfg.ChiselMemory,
	})
	folds := map[string][]journal.Engine{}
	var streams []journal.StreamSpec
	for _, m := range cfg.Modules {
		if sd, ok := m.(engines.StreamDeclarer); ok {
			streams = append(streams, sd.Streams()...)
		}
		for stream, es := range m.Engines() {
			folds[stream] = append(folds[stream], es...)
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// Refuse early, before opening anything, when a live daemon answers.
	if err := checkSocket(cfg.Socket); err != nil {
		return err
	}

	key, err := journal.LoadNodeKey(cfg.DataDir)
	if err != nil {
		return err
	}
	s.journal, err = journal.Open(journal.Options{
		Signing:   journal.Signing{Key: key},
		Dir:       cfg.DataDir,
		Node:      node,
		Logger:    s.log.With("component", "journal"),
		Reserve:   cfg.Reserve,
		Retention: cfg.CaptureRetention,
		Streams:   streams,
		Engines:   folds,
	})
	if err != nil {
		return fmt.Errorf("open journal in %s: %w", cfg.DataDir, err)
	}
	defer s.journal.Close()
	// An import whose importer went away with the daemon (a part with
	// more, then a crash) is recorded now, as a connection's end would.
	for _, name := range s.journal.Names() {
		if st := s.journal.Stream(name); st.PendingImport() {
			if _, err := st.SettleImport(ctx); err != nil {
				return fmt.Errorf("record the interrupted import into %s: %w", name, err)
			}
		}
	}
	// NATS publishes every event from here on, also those the engines
	// write while they start (the KV engine expires overdue leases).
	busFrom := make(map[string]int64)
	for _, name := range s.journal.Names() {
		busFrom[name] = s.journal.Stream(name).DurableSeq() + 1
	}

	// Modules start before any listener opens (the KV engine expires overdue
	// leases there) and stop after the last request has drained.
	modCtx, stopModules := context.WithCancel(context.Background())
	defer stopModules()
	host := engines.Host{Journal: s.journal, Node: node, DataDir: cfg.DataDir, Services: &engines.Services{},
		Authorize: func(ctx context.Context, actor journal.Actor, verb string, args map[string]string, access dsl.Access) error {
			return s.decide(ctx, actor, verb, args, accessOf(access))
		}}
	host.Services.Provide(engines.RequestsService, &s.requests)
	if cfg.NATS != "off" {
		host.Publish = s.publish
	}
	for i, m := range order {
		host.Logger = s.log.With("engine", m.Name())
		if err := m.Start(modCtx, host); err != nil {
			stopModules() // the goroutines started modules own end first
			for _, started := range slices.Backward(order[:i]) {
				started.Stop()
			}
			return fmt.Errorf("start engine %s: %w", m.Name(), err)
		}
	}
	stopEngines := sync.OnceFunc(func() {
		stopModules()
		for _, m := range slices.Backward(order) {
			if err := m.Stop(); err != nil {
				s.log.Error("stop engine", "engine", m.Name(), "err", err)
			}
		}
	})
	defer stopEngines()

	if cfg.NATS != "off" {
		s.bus, err = startBus(context.Background(), s, cfg, busFrom)
		if err != nil {
			return err
		}
		s.pub.Store(s.bus)
		defer s.bus.close()
	}

	// The HTTP routes are gathered once the modules started: a handler
	// may use what Start set up.
	if cfg.HTTP != "off" {
		s.http, err = s.listenHTTP(cfg.HTTP)
		if err != nil {
			return err
		}
		defer s.http.ln.Close()
	}

	nofile := raiseNoFile(s.log)
	s.limits = newConnLimits(connBudget(nofile, len(s.journal.Names()), cfg.MaxConns), cfg.MaxConnsPerUID)
	ln, err := listenSocket(cfg.Socket, socketGID)
	if err != nil {
		return err
	}
	s.connCtx, s.connCancel = context.WithCancel(context.Background())
	defer s.connCancel()
	s.workers = newWorkers(s.connCtx)

	if _, err := s.journal.Stream(journal.Audit).Append(ctx, &journal.Body{
		Kind: "daemon.start", Actor: journal.SystemActor(),
		Data: map[string]any{"version": Version, "pid": int64(os.Getpid()), "socket": cfg.Socket, "nats": s.natsURL(), "http": s.httpAddr()},
	}); errors.Is(err, journal.ErrResourceExhausted) {
		// Start anyway: reads keep working while the disk is nearly full.
		s.log.Warn("daemon.start not recorded", "err", err)
	} else if err != nil {
		ln.Close()
		return fmt.Errorf("record daemon.start: %w", err)
	}
	s.log.Info("cairn daemon started", "version", Version, "socket", cfg.Socket, "data", cfg.DataDir, "nats", s.natsURL(), "http", s.httpAddr())

	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		s.accept(ln)
	}()
	if s.http != nil {
		go s.http.serve(s.log)
	}
	if ready != nil {
		ready(s)
	}

	<-ctx.Done()
	s.log.Info("cairn daemon stopping")
	ln.Close()
	<-acceptDone
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if s.http != nil {
			s.http.shutdown(s.log, s.cfg.DrainTimeout)
		}
	}()
	s.drain()
	<-httpDone

	if _, err := s.journal.Stream(journal.Audit).Append(context.Background(), &journal.Body{
		Kind: "daemon.stop", Actor: journal.SystemActor(),
		Data: map[string]any{"uptime_ns": int64(time.Since(s.started))},
	}); err != nil {
		s.log.Error("record daemon.stop", "err", err)
	}
	stopEngines()
	if s.bus != nil {
		s.bus.close()
	}
	if err := s.journal.Close(); err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	s.log.Info("cairn daemon stopped")
	return nil
}

// VerbTable returns the verb table a daemon with these modules serves: the
// daemon's verbs and every module's. The CLI, help and docs/dsl.md read it;
// its handlers are unbound (the daemon's own have no Server).
func VerbTable(mods []engines.Module) *dsl.Table {
	return buildTable(nil, mods)
}

// buildTable registers the daemon's verbs, bound to s when s is not nil,
// and every module's, each spec holding its handler: the one registry from
// the CLI to the handler.
func buildTable(s *Server, mods []engines.Module) *dsl.Table {
	t := dsl.NewTable()
	for _, list := range daemonVerbs() {
		for _, v := range list {
			if s != nil {
				v.Spec.Handler = v.bind(s).Run
			}
			t.Register(v.Spec)
		}
	}
	for _, m := range mods {
		for _, v := range m.Verbs() {
			v.Spec.Handler = v.Run
			t.Register(v.Spec)
		}
	}
	return t
}

// handlerOf is the handler the table holds for a statement's verb.
func handlerOf(sp *dsl.Spec) engines.Handler {
	h, _ := sp.Handler.(engines.Handler)
	return h
}

// Journal returns the daemon's journal.
func (s *Server) Journal() *journal.Journal { return s.journal }

func (s *Server) accept(ln *socketListener) {
	var backoff acceptBackoff
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff.failed(s.log, "socket", unwrapSyscall(err))
			continue
		}
		backoff.ok()
		peer, err := peerOf(c)
		if err != nil {
			s.log.Warn("refusing connection without peer credentials", "err", err)
			c.Close()
			continue
		}
		release, err := s.limits.acquire(peer.UID)
		if err != nil {
			go refuseConn(c, err)
			continue
		}
		cn := s.newConn(c, peer)
		s.connsMu.Lock()
		s.open[cn] = struct{}{}
		s.connsMu.Unlock()
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer release()
			cn.serve()
			s.connsMu.Lock()
			delete(s.open, cn)
			s.connsMu.Unlock()
		}()
	}
}

// drain stops reading new requests, ends every stream, and waits for the
// requests in flight to be answered, at most DrainTimeout.
func (s *Server) drain() {
	s.connsMu.Lock()
	for cn := range s.open {
		cn.c.CloseRead()
		cn.cancelStreams()
	}
	s.connsMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.DrainTimeout):
		s.log.Warn("requests still running after the drain timeout; canceling them and closing their connections", "timeout", s.cfg.DrainTimeout)
		s.connCancel()
		// A request blocked writing to a client that does not read ends
		// only when its connection closes.
		s.connsMu.Lock()
		for cn := range s.open {
			cn.c.Close()
		}
		s.connsMu.Unlock()
		<-done
	}
}

// execute parses and runs one request line, answering done or an error.
func (s *Server) execute(ctx context.Context, cn *conn, id int64, text string, run *running) {
	stmts, err := dsl.Parse(text, s.verbs)
	if err != nil {
		cn.send(encodeError(id, errorBody(err)))
		return
	}
	r := &request{id: id, actor: cn.peer.Actor(), conn: cn}
	for _, st := range stmts {
		handler := handlerOf(st.Spec)
		if st.Pipe != nil {
			if !st.Spec.Pipe || st.Spec.Client {
				r.flush(encodeError(id, wire.Error{Code: wire.InvalidArgument, Message: fmt.Sprintf("%s: only %s can feed a chisel, not %s", st.Pipe.Pos, strings.Join(s.pipeVerbs(), " and "), st.Spec.Verb), Pos: &wire.Pos{Line: st.Pipe.Pos.Line, Col: st.Pipe.Pos.Col}}))
				return
			}
			handler = s.runChiselPipe
		}
		if st.Spec.Stream {
			cn.mu.Lock()
			run.stream = true
			if cn.readDone {
				// The client left (or the daemon is stopping) before this
				// stream began: it would never end on its own.
				run.cancel()
			}
			cn.mu.Unlock()
		}
		r.stmt, r.live = st, st.Spec.Stream
		if err := s.authorize(ctx, r.actor, st); err != nil {
			r.flush(encodeError(id, errorBody(err)))
			return
		}
		start := time.Now()
		err := s.callHandler(ctx, handler, st.Spec.Verb, r)
		s.requests.observe(st.Spec.Verb, time.Since(start), st.Spec.Stream, err != nil && !errors.Is(err, errClientGone) && ctx.Err() == nil)
		if err != nil {
			if errors.Is(err, errClientGone) {
				return
			}
			if ctx.Err() != nil && run.stream {
				// A stream ended by cancel or by the daemon stopping is done.
				break
			}
			body := errorBody(err)
			if body.Code == "internal" {
				s.log.Error("request failed", "verb", st.Spec.Verb, "err", err)
			}
			r.flush(encodeError(id, body))
			return
		}
	}
	r.flush(encodeDone(id))
}

// callHandler runs one statement's handler; a panic in it fails that
// request, logged with its stack, and leaves the daemon running.
func (s *Server) callHandler(ctx context.Context, handler engines.Handler, verb string, r engines.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "verb", verb, "panic", p, "stack", string(debug.Stack()))
			err = wire.Errorf(wire.Internal, "%s failed on an internal error (%v); the daemon keeps running — please report it with the statement", verb, p)
		}
	}()
	return handler(ctx, r)
}

// lockDataDir takes an exclusive lock on the data directory so that a
// second daemon refuses it clearly.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "cairn.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another cairn daemon (pid %s); stop it or use another --data", dir, string(owner))
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return func() {
		f.Truncate(0)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
