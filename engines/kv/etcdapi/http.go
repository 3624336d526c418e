package etcdapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/runtime/protoimpl" // etcd's messages are protobuf v1 (gogo): the v2 view of one, as grpc-gateway takes it
)

// The HTTP side of the etcd port, as etcd serves it: /health, /version,
// /metrics and the JSON gateway under /v3/ (grpc-gateway, with etcd's own
// generated handlers). Gateway calls go to the same service methods as
// gRPC ones, in process, after the same authorization, with the HTTP
// caller (found through the kernel at accept, as for gRPC) as the actor.

// counters are the RPC counts /metrics reports under etcd's names.
type counters struct {
	put, del, txn, rng atomic.Int64
}

func (s *server) httpHandler(ctx context.Context, svc services) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveHealth)
	mux.HandleFunc("/livez", s.serveHealth)
	mux.HandleFunc("/version", serveVersion)
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry(), promhttp.HandlerOpts{}))

	// etcd's gateway options: proto field names, no zero values, unknown
	// fields ignored.
	gwmux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	for _, reg := range []func() error{
		func() error { return gw.RegisterKVHandlerServer(ctx, gwmux, gwKV{s, svc.kv}) },
		func() error { return gw.RegisterLeaseHandlerServer(ctx, gwmux, gwLease{s, svc.lease}) },
		func() error {
			return gw.RegisterMaintenanceHandlerServer(ctx, gwmux, gwMaintenance{s, svc.maintenance})
		},
		func() error { return gw.RegisterClusterHandlerServer(ctx, gwmux, svc.cluster) },
	} {
		if err := reg(); err != nil {
			return nil, err
		}
	}
	mux.Handle("/v3/watch", s.serveWatch(svc.watch))
	mux.Handle("/v3/", gwmux)
	return mux, nil
}

// services are the gRPC services the gateway calls.
type services struct {
	kv          pb.KVServer
	watch       *watchService
	lease       pb.LeaseServer
	maintenance pb.MaintenanceServer
	cluster     pb.ClusterServer
}

// connContext puts the connection's remote address in each request's
// context as a gRPC peer, so the services find the caller as they do for
// gRPC (remoteOf).
func connContext(ctx context.Context, c net.Conn) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: c.RemoteAddr()})
}

// serveHealth answers as etcd's /health: healthy unless an alarm is armed.
func (s *server) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}{Health: "true"}
	code := http.StatusOK
	(&maintenanceService{server: s}).checkSpace()
	if as := s.alarms.list(pb.AlarmType_NONE); len(as) > 0 {
		h.Health, h.Reason, code = "false", "ALARM "+as[0].Alarm.String(), http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}

// serveVersion answers as etcd's /version.
func serveVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}{serverVersion, version.Cluster(serverVersion) + ".0"})
}

// registry holds the metrics of /metrics, under etcd's names, read from
// the store and the server's counters when scraped.
func (s *server) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, c *atomic.Int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(c.Load()) }))
	}
	gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", func() float64 { return 1 })
	gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", func() float64 { return 1 })
	gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", func() float64 { return float64(s.store.DBSize()) })
	gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.", func() float64 { return float64(s.store.Rev()) })
	gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", func() float64 { return float64(s.watchesHeld()) })
	gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", func() float64 { return 0 })
	counter("etcd_mvcc_put_total", "Total number of puts seen by this member.", &s.counts.put)
	counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", &s.counts.del)
	counter("etcd_mvcc_txn_total", "Total number of txns seen by this member.", &s.counts.txn)
	counter("etcd_mvcc_range_total", "Total number of ranges seen by this member.", &s.counts.rng)
	reg.MustRegister(collectors.NewGoCollector())
	return reg
}

// watchesHeld counts the watches every connection holds.
func (s *server) watchesHeld() int {
	if s.conns == nil {
		return 0
	}
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	n := 0
	for _, w := range s.conns.watches {
		n += w
	}
	return n
}

// The gateway's services: each call authorized as its gRPC twin is.

type gwKV struct {
	s *server
	pb.KVServer
}

func (g gwKV) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.KV/Range", r); err != nil {
		return nil, err
	}
	return g.KVServer.Range(ctx, r)
}

func (g gwKV) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.KV/Put", r); err != nil {
		return nil, err
	}
	return g.KVServer.Put(ctx, r)
}

func (g gwKV) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.KV/DeleteRange", r); err != nil {
		return nil, err
	}
	return g.KVServer.DeleteRange(ctx, r)
}

func (g gwKV) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.KV/Txn", r); err != nil {
		return nil, err
	}
	return g.KVServer.Txn(ctx, r)
}

func (g gwKV) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.KV/Compact", r); err != nil {
		return nil, err
	}
	return g.KVServer.Compact(ctx, r)
}

type gwLease struct {
	s *server
	pb.LeaseServer
}

func (g gwLease) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.Lease/LeaseGrant", r); err != nil {
		return nil, err
	}
	return g.LeaseServer.LeaseGrant(ctx, r)
}

func (g gwLease) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.Lease/LeaseRevoke", r); err != nil {
		return nil, err
	}
	return g.LeaseServer.LeaseRevoke(ctx, r)
}

type gwMaintenance struct {
	s *server
	pb.MaintenanceServer
}

func (g gwMaintenance) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.Maintenance/Alarm", r); err != nil {
		return nil, err
	}
	return g.MaintenanceServer.Alarm(ctx, r)
}

func (g gwMaintenance) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := g.s.authorize(ctx, "/etcdserverpb.Maintenance/Defragment", r); err != nil {
		return nil, err
	}
	return g.MaintenanceServer.Defragment(ctx, r)
}

// serveWatch is /v3/watch as etcd's gateway serves it: the request body is
// a stream of WatchRequest JSON objects, the answer a stream of
// {"result": WatchResponse} objects, one per line, flushed as they come.
// It runs the Watch service over the HTTP exchange, after the same
// authorization as the gRPC stream.
func (s *server) serveWatch(ws *watchService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, `{"error":"method not allowed: POST a WatchRequest","code":12}`, http.StatusMethodNotAllowed)
			return
		}
		ctx := r.Context()
		if err := s.authorize(ctx, "/etcdserverpb.Watch/Watch", nil); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		// Requests keep coming on the body while answers go out.
		http.NewResponseController(w).EnableFullDuplex()
		st := &httpWatchStream{ctx: ctx, w: w, dec: json.NewDecoder(r.Body)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		ws.Watch(st)
	})
}

// httpWatchStream is a pb.Watch_WatchServer over one HTTP exchange.
type httpWatchStream struct {
	grpc.ServerStream
	ctx context.Context
	w   http.ResponseWriter
	dec *json.Decoder
}

var watchJSON = protojson.MarshalOptions{UseProtoNames: true}

func (st *httpWatchStream) Context() context.Context { return st.ctx }

func (st *httpWatchStream) Send(r *pb.WatchResponse) error {
	b, err := watchJSON.Marshal(protoimpl.X.ProtoMessageV2Of(r))
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(b)+12)
	out = append(out, `{"result":`...)
	out = append(out, b...)
	out = append(out, "}\n"...)
	if _, err := st.w.Write(out); err != nil {
		return err
	}
	if f, ok := st.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// Recv reads the next WatchRequest of the body; at its end it waits for
// the client to go away, as the watches keep the exchange open.
func (st *httpWatchStream) Recv() (*pb.WatchRequest, error) {
	var raw json.RawMessage
	if err := st.dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			<-st.ctx.Done()
			return nil, st.ctx.Err()
		}
		return nil, err
	}
	req := &pb.WatchRequest{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, protoimpl.X.ProtoMessageV2Of(req)); err != nil {
		return nil, err
	}
	return req, nil
}

func (st *httpWatchStream) SetHeader(metadata.MD) error  { return nil }
func (st *httpWatchStream) SendHeader(metadata.MD) error { return nil }
func (st *httpWatchStream) SetTrailer(metadata.MD)       {}
