package etcdapi

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/peercred"
	"github.com/cairnhq/cairn/journal"
)

// Bounds of what one client may hold (issue 11: 300k watches from one
// unprivileged client grew the daemon to the OOM killer).
const (
	// maxStreamsPerConn bounds concurrent gRPC streams on one connection.
	maxStreamsPerConn = 1024
	// maxConns bounds the etcd API's connections in all.
	maxConns = 4096
)

// maxConnsPerUID bounds the connections of one non-root uid (the socket's
// --max-conns-per-uid default), so one user cannot take every slot; a
// variable for the tests.
var maxConnsPerUID = 256

// maxWatchesPerConn bounds the watches one connection holds across its
// Watch streams (a variable for the tests).
var maxWatchesPerConn = 10000

// checkLoopback refuses an address beyond loopback unless --etcd-auth:
// without etcd's auth a remote caller has no identity to judge.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--etcd %q: want HOST:PORT: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--etcd %s binds beyond loopback: bind 127.0.0.1 (or ::1), or add --etcd-auth to serve callers from elsewhere once etcd's auth is enabled (docs/security.md)", addr)
	}
	return nil
}

// conns is the etcd API's listener: it caps connections and finds each
// one's caller once, at accept (internal/peercred), so an RPC's actor is a
// map lookup.
type conns struct {
	net.Listener
	slots chan struct{}

	mu      sync.Mutex
	actors  map[string]journal.Actor // by remote address
	watches map[string]int           // watches held, by remote address
	perUID  map[int]int              // connections held, by non-root uid

	// actorOf finds a connection's caller (peercred.TCPActor; tests
	// name their own).
	actorOf func(local, remote net.Addr) journal.Actor
}

func newConns(l net.Listener) *conns {
	return &conns{Listener: l, slots: make(chan struct{}, maxConns), actors: map[string]journal.Actor{},
		watches: map[string]int{}, perUID: map[int]int{},
		actorOf: func(local, remote net.Addr) journal.Actor { return peercred.TCPActor(local, remote, "etcd") }}
}

func (l *conns) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
		default:
			c.Close() // over the cap: the client sees a closed connection
			continue
		}
		key := c.RemoteAddr().String()
		a := l.actorOf(c.LocalAddr(), c.RemoteAddr())
		l.mu.Lock()
		if a.UID != 0 && l.perUID[a.UID] >= maxConnsPerUID {
			l.mu.Unlock()
			<-l.slots
			c.Close() // over the uid's cap: a closed connection, as over the total
			continue
		}
		if a.UID != 0 {
			l.perUID[a.UID]++
		}
		l.actors[key] = a
		l.mu.Unlock()
		return &conn{Conn: c, l: l, key: key, uid: a.UID}, nil
	}
}

// actor is who is calling on the connection from remote.
func (l *conns) actor(remote string) journal.Actor {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.actors[remote]; ok {
		return a
	}
	return journal.Actor{UID: -1, GID: -1, Via: "etcd", Addr: remote}
}

// addWatch takes a watch slot of the connection from remote.
func (l *conns) addWatch(remote string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watches[remote] >= maxWatchesPerConn {
		return false
	}
	l.watches[remote]++
	return true
}

func (l *conns) dropWatch(remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watches[remote]--; l.watches[remote] <= 0 {
		delete(l.watches, remote)
	}
}

type conn struct {
	net.Conn
	l    *conns
	key  string
	uid  int
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.actors, c.key)
		if c.uid != 0 {
			if c.l.perUID[c.uid]--; c.l.perUID[c.uid] <= 0 {
				delete(c.l.perUID, c.uid)
			}
		}
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return c.Conn.Close()
}

// remoteOf is the remote address of an RPC's connection.
func remoteOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// writes maps the RPCs that change cairn's state to their verb names in
// the policy (docs/security.md) and access class.
var writes = map[string]dsl.Access{
	"/etcdserverpb.KV/Put":                 dsl.AccessWrite,
	"/etcdserverpb.KV/DeleteRange":         dsl.AccessWrite,
	"/etcdserverpb.KV/Compact":             dsl.AccessWrite,
	"/etcdserverpb.Lease/LeaseGrant":       dsl.AccessWrite,
	"/etcdserverpb.Lease/LeaseRevoke":      dsl.AccessWrite,
	"/etcdserverpb.Lease/LeaseKeepAlive":   dsl.AccessWrite,
	"/etcdserverpb.Maintenance/Alarm":      dsl.AccessWrite,
	"/etcdserverpb.Maintenance/Defragment": dsl.AccessHost,
	"/etcdserverpb.Maintenance/MoveLeader": dsl.AccessHost,
	"/etcdserverpb.Maintenance/Downgrade":  dsl.AccessHost,
	"/etcdserverpb.Maintenance/Snapshot":   dsl.AccessRead,
	"/etcdserverpb.Cluster/MemberAdd":      dsl.AccessHost,
	"/etcdserverpb.Cluster/MemberRemove":   dsl.AccessHost,
	"/etcdserverpb.Cluster/MemberUpdate":   dsl.AccessHost,
	"/etcdserverpb.Cluster/MemberPromote":  dsl.AccessHost,
	"/etcdserverpb.Auth/AuthEnable":        dsl.AccessHost,
	"/etcdserverpb.Auth/AuthDisable":       dsl.AccessHost,
}

// verbOf is an RPC's name as the policy sees it: "etcd put".
func verbOf(method string) string {
	i := strings.LastIndexByte(method, '/')
	return "etcd " + strings.ToLower(method[i+1:])
}

// txnWrites reports whether a txn may write (either branch).
func txnWrites(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return true
			case *pb.RequestOp_RequestTxn:
				if txnWrites(op.GetRequestTxn()) {
					return true
				}
			}
		}
	}
	return false
}

// authorize asks the daemon's policy about one RPC.
func (s *server) authorize(ctx context.Context, method string, req any) error {
	if s.authz == nil {
		return nil
	}
	if s.auth != nil && s.auth.state().Enabled {
		return nil // etcd's own auth decided (etcdAuth); the socket's rule is for auth off
	}
	access, ok := writes[method]
	if t, isTxn := req.(*pb.TxnRequest); isTxn && txnWrites(t) {
		access, ok = dsl.AccessWrite, true
	}
	if !ok {
		return nil
	}
	if err := s.authz(ctx, s.callerOf(ctx), verbOf(method), nil, access); err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return nil
}

// callerOf is the actor of an RPC.
func (s *server) callerOf(ctx context.Context) journal.Actor {
	a := journal.Actor{UID: -1, GID: -1, Via: "etcd", Addr: remoteOf(ctx)}
	if s.conns != nil {
		a = s.conns.actor(remoteOf(ctx))
	}
	if u := etcdUserOf(ctx); u != "" {
		a.Principal = "etcd:" + u
	}
	return a
}

func (s *server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.etcdAuth(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, info.FullMethod, req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.etcdAuth(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, info.FullMethod, nil); err != nil {
		return err
	}
	return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a stream with the context etcdAuth gave it.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }

// etcdAuth applies etcd's auth when it is enabled: the request's token
// names its user (Authenticate needs none), whose permissions must allow
// it; the user goes into the context, for watches and for the actor. A
// caller beyond loopback (--etcd-auth) is refused until auth is enabled.
func (s *server) etcdAuth(ctx context.Context, method string, req any) (context.Context, error) {
	if s.auth == nil {
		return ctx, nil
	}
	enabled := s.auth.state().Enabled
	if !enabled && !isLoopback(remoteOf(ctx)) {
		return ctx, status.Error(codes.PermissionDenied, "etcdserver: this endpoint takes callers beyond loopback only with etcd auth enabled (etcdctl auth enable, from loopback)")
	}
	if !enabled || method == "/etcdserverpb.Auth/Authenticate" {
		return ctx, nil
	}
	user, err := s.auth.userOf(ctx)
	if err != nil {
		return ctx, err
	}
	if err := s.auth.check(user, method, req); err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, etcdUserKey{}, user), nil
}

// isLoopback reports whether a host:port address is on loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// takeWatch takes a watch slot of the connection from remote.
func (s *server) takeWatch(remote string) bool {
	if s.conns == nil {
		return true
	}
	return s.conns.addWatch(remote)
}

func (s *server) dropWatch(remote string) {
	if s.conns != nil {
		s.conns.dropWatch(remote)
	}
}
