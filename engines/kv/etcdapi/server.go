// Package etcdapi serves cairn's KV engine over etcd's v3 gRPC API, so that
// etcdctl, go.etcd.io/etcd/client/v3 and the tools built on them work
// against `cairn daemon --etcd ADDR`.
//
// It serves the KV, Watch and Lease services, Maintenance's Status, Alarm
// (the free-space reserve is etcd's NOSPACE alarm), HashKV, Hash and
// Defragment, and Cluster.MemberList (one member: this daemon). Every other
// RPC of those services and of Auth answers codes.Unimplemented with a
// message naming what is served; docs/kv.md lists them all. Compact is
// journaled (kv.compact) but drops nothing: cairn keeps all history, and
// only the etcd API answers ErrCompacted below it, when it honours
// compaction (--etcd-honour-compaction).
//
// Writes become journal events like any other, with the actor
// {via: "etcd", addr: the peer's address}; uid, gid and pid are -1, which
// means unknown, since a network caller has no peer credentials.
package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/kv"
	"github.com/cairnhq/cairn/journal"
)

// Constants of the one-member "cluster" this API pretends to be. etcd
// clients only display them or compare them with each other.
const (
	clusterID = 0xca1e_0000_0000_0001
	memberID  = 0xca1e_0000_0000_0002
	raftTerm  = 1

	// grpcOverhead is room for the request's framing around a value of
	// kv.MaxValueSize, as etcd adds to --max-request-bytes, so that the KV
	// engine (not gRPC) refuses a too-large value, with etcd's message.
	grpcOverhead = 512 * 1024
)

// serverVersion is what Maintenance.Status reports: the release of
// go.etcd.io/etcd/api whose protocol this package serves (etcdctl only
// displays it; clients that check it want ≥ 3.2, Kubernetes ≥ 3.5.13 for
// its watch-progress features).
var serverVersion = version.Version

// server holds what every service needs.
type server struct {
	store *kv.Store
	log   *slog.Logger
	addr  string // the address listened on, for MemberList

	alarms   alarmSet      // armed alarms (Maintenance.Alarm)
	progress time.Duration // interval of periodic watch progress notifications

	authz func(ctx context.Context, actor journal.Actor, verb string, args map[string]string, access dsl.Access) error
	conns *conns // the listener: each connection's caller and watches
	// tooManyWatches is the cancel reason of a watch over the cap.
	tooManyWatches string
	counts         counters   // for /metrics
	tmpDir         string     // where snapshots are built ("": the system's)
	auth           *AuthStore // etcd's users and roles; nil: no Auth service

	// ctx ends when the server stops; long-lived streams (watches,
	// keepalives) end with it so that GracefulStop does not wait forever.
	ctx context.Context
}

// Serve listens on addr and serves the etcd v3 API on s until ctx ends or
// stop is called; a watch that asks for progress notifications gets one
// every progress (0: etcd's default, 10 minutes) it is quiet. Errors opening
// the listener are returned at once; bound is the address it listens on.
func Serve(ctx context.Context, addr string, progress time.Duration, s *kv.Store, log *slog.Logger, authz Authorizer, tmpDir string, auth *AuthStore, authBeyondLoopback bool) (stop func() error, bound string, err error) {
	if log == nil {
		log = slog.Default()
	}
	if err := checkLoopback(addr); err != nil && !authBeyondLoopback {
		return nil, "", err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("etcd api: listen on %s: %w", addr, err)
	}
	stop = serveListenerEvery(ctx, lis, progress, s, log, authz, tmpDir, auth)
	return stop, lis.Addr().String(), nil
}

// serveListener serves on lis, which it owns from now on.
func serveListener(ctx context.Context, lis net.Listener, s *kv.Store, log *slog.Logger) (stop func() error) {
	return serveListenerEvery(ctx, lis, progressInterval, s, log, nil, "", nil)
}

func serveListenerEvery(ctx context.Context, lis net.Listener, progress time.Duration, s *kv.Store, log *slog.Logger, authz Authorizer, tmpDir string, auth *AuthStore) (stop func() error) {
	sctx, cancel := context.WithCancel(ctx)
	if progress <= 0 {
		progress = progressInterval
	}
	cl := newConns(lis)
	srv := &server{store: s, log: log, addr: lis.Addr().String(), ctx: sctx, progress: progress, authz: authz, conns: cl,
		tooManyWatches: tooManyWatches(), tmpDir: tmpDir, auth: auth}

	const streamWorkers = 256
	const (
		streamWindow = 1 << 20
		connWindow   = 4 << 20
	)
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(kv.MaxValueSize+grpcOverhead),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		// Handlers run on long-lived workers rather than a new goroutine
		// per RPC: a fresh goroutine's stack grows (copystack) through
		// the journal and pebble on every call, 16% of the CPU under 64
		// clients. Streams beyond the workers still get goroutines.
		grpc.NumStreamWorkers(streamWorkers),
		// etcdctl pings every 2s while a stream (watch, keep-alive) is
		// open; gRPC's default policy (5 min) would close it for
		// "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		// Fixed flow-control windows (no BDP growth): what a client has
		// sent and the daemon not yet read is at most connWindow per
		// connection, whatever its streams do (issue 11's watch flood).
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.ChainUnaryInterceptor(unimplementedUnary, srv.authUnary),
		grpc.ChainStreamInterceptor(unimplementedStream, srv.authStream),
	)
	svc := services{kv: &kvService{server: srv}, watch: &watchService{server: srv}, lease: &leaseService{server: srv},
		maintenance: &maintenanceService{server: srv}, cluster: &clusterService{server: srv}}
	pb.RegisterKVServer(g, svc.kv)
	pb.RegisterWatchServer(g, svc.watch)
	pb.RegisterLeaseServer(g, svc.lease)
	pb.RegisterMaintenanceServer(g, svc.maintenance)
	pb.RegisterClusterServer(g, svc.cluster)
	if auth != nil {
		pb.RegisterAuthServer(g, &authService{server: srv})
	} else {
		pb.RegisterAuthServer(g, &pb.UnimplementedAuthServer{})
	}

	// gRPC and HTTP share the port, as etcd's do (split.go).
	sp := newSplit(cl)
	handler, err := srv.httpHandler(sctx, svc)
	if err != nil {
		cancel()
		sp.Close()
		return func() error { return err }
	}
	hs := &http.Server{Handler: handler, ConnContext: connContext, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return sctx }}
	served := make(chan error, 1)
	go func() { served <- g.Serve(sp.grpcL) }()
	go hs.Serve(sp.httpL)
	log.Info("etcd v3 api listening", "addr", srv.addr, "http", "/health /version /metrics /v3/")

	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			hs.Close() // HTTP exchanges end; watches over HTTP end with sctx
			// Streams end with sctx; give unary calls in flight a moment.
			done := make(chan struct{})
			go func() { g.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				g.Stop()
				<-done
			}
			sp.Close()
			if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
				stopErr = fmt.Errorf("etcd api: serve: %w", err)
			}
		})
		return stopErr
	}
	go func() {
		<-sctx.Done()
		stop()
	}()
	return stop
}

// header returns a response header at revision rev.
func header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: clusterID, MemberId: memberID, Revision: rev, RaftTerm: raftTerm}
}

// Authorizer is the daemon's policy, asked about every write (engines.Host).
type Authorizer = func(ctx context.Context, actor journal.Actor, verb string, args map[string]string, access dsl.Access) error

// errTable maps the KV engine's errors to etcd's gRPC errors, which carry
// the codes and messages etcd clients recognise.
var errTable = []struct {
	kv, grpc error
}{
	{kv.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{kv.ErrValueTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{kv.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{kv.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{kv.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{kv.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{kv.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{kv.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{kv.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{kv.ErrLeaseTTLLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	// The disk-space reserve is cairn's NOSPACE alarm.
	{journal.ErrResourceExhausted, rpctypes.ErrGRPCNoSpace},
}

// toGRPC turns an error of the KV engine or the journal into a gRPC status
// error: etcd's own where one matches, else the closest code with cairn's
// message.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, e := range errTable {
		if errors.Is(err, e.kv) {
			return e.grpc
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, journal.ErrClosed):
		return status.Error(codes.Unavailable, "etcdserver: cairn is shutting down: "+err.Error())
	}
	code := codes.Internal
	switch engines.ErrorCode(err) {
	case wire.InvalidArgument:
		code = codes.InvalidArgument
	case wire.NotFound:
		code = codes.NotFound
	case wire.FailedPrecondition:
		code = codes.FailedPrecondition
	case wire.OutOfRange:
		code = codes.OutOfRange
	case wire.ResourceExhausted:
		code = codes.ResourceExhausted
	case wire.Unavailable:
		code = codes.Unavailable
	case wire.AlreadyExists:
		code = codes.AlreadyExists
	case wire.PermissionDenied:
		code = codes.PermissionDenied
	}
	return status.Error(code, "etcdserver: "+err.Error())
}

// served names what this API implements, for Unimplemented messages.
const served = "cairn serves etcd's KV, Watch and Lease services, Maintenance's Status, Alarm, HashKV and Defragment, and Cluster.MemberList; see docs/kv.md"

// unimplementedUnary rewrites the generated "method X not implemented"
// answers into a message that says what cairn serves instead.
func unimplementedUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, rewriteUnimplemented(err, info.FullMethod)
}

func unimplementedStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return rewriteUnimplemented(handler(srv, ss), info.FullMethod)
}

func rewriteUnimplemented(err error, method string) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unimplemented || !strings.HasPrefix(st.Message(), "method ") {
		return err
	}
	name := strings.ReplaceAll(strings.TrimPrefix(method, "/etcdserverpb."), "/", ".")
	return status.Errorf(codes.Unimplemented, "%s is not supported by cairn (%s)", name, served)
}
