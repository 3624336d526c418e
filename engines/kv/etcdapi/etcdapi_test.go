package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/engines/kv"
	"github.com/cairnhq/cairn/journal"
)

func TestMain(m *testing.M) {
	progressInterval = 200 * time.Millisecond
	goleak.VerifyTestMain(m)
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// testServer is the etcd API on a Store on an in-memory journal.
type testServer struct {
	store *kv.Store
	j     *journal.Journal
	addr  string
	stop  func() error
	cli   *clientv3.Client
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	s := kv.New(kv.Options{Logger: quietLog, ExpiryEvery: 50 * time.Millisecond})
	j, err := journal.Open(journal.Options{
		Dir: "data", FS: vfs.NewMem(), Node: "test", Logger: quietLog,
		Engines: map[string][]journal.Engine{journal.Audit: {s.Engine()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx, j); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{store: s, j: j, addr: lis.Addr().String()}
	ts.stop = serveListener(ctx, lis, s, quietLog)
	ts.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{ts.addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.cli.Close()
		if err := ts.stop(); err != nil {
			t.Error(err)
		}
		cancel()
		s.Stop()
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	})
	return ts
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func keys(kvs []*mvccpb.KeyValue) string {
	var b []string
	for _, x := range kvs {
		b = append(b, string(x.Key)+"="+string(x.Value))
	}
	return strings.Join(b, " ")
}

func TestKV(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	c := ts.cli

	p1, err := c.Put(ctx, "a/1", "z")
	if err != nil {
		t.Fatal(err)
	}
	if h := p1.Header; h.ClusterId != clusterID || h.MemberId != memberID || h.RaftTerm != raftTerm || h.Revision != ts.store.Rev() {
		t.Errorf("put header %+v", h)
	}
	c.Put(ctx, "a/2", "y")
	c.Put(ctx, "a/3", "x")
	p4, _ := c.Put(ctx, "a/1", "w", clientv3.WithPrevKV())
	if p4.PrevKv == nil || string(p4.PrevKv.Value) != "z" {
		t.Errorf("put prev_kv %+v", p4.PrevKv)
	}

	for _, tc := range []struct {
		name string
		opts []clientv3.OpOption
		want string
		more bool
	}{
		{"prefix", []clientv3.OpOption{clientv3.WithPrefix()}, "a/1=w a/2=y a/3=x", false},
		{"limit", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, "a/1=w a/2=y", true},
		{"sort by value", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)}, "a/1=w a/3=x a/2=y", false},
		{"sort by mod descending, limit", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(2)}, "a/1=w a/3=x", true},
		{"key descending", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, "a/3=x a/2=y a/1=w", false},
		{"version target without order ascends", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortNone)}, "a/2=y a/3=x a/1=w", false},
		{"min mod revision", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(p4.Header.Revision)}, "a/1=w", false},
		{"max create revision", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(p1.Header.Revision)}, "a/1=w", false},
		{"at a past revision", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(p1.Header.Revision)}, "a/1=z", false},
		{"from key", []clientv3.OpOption{clientv3.WithFromKey()}, "a/1=w a/2=y a/3=x", false},
	} {
		gr, err := c.Get(ctx, "a/", tc.opts...)
		if tc.name == "from key" {
			gr, err = c.Get(ctx, "a/1", tc.opts...)
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := keys(gr.Kvs); got != tc.want || gr.More != tc.more {
			t.Errorf("%s: %q more=%v, want %q more=%v", tc.name, got, gr.More, tc.want, tc.more)
		}
	}
	gr, err := c.Get(ctx, "a/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || gr.Count != 3 || len(gr.Kvs) != 0 {
		t.Errorf("count only: %+v %v", gr, err)
	}

	// Txn: compare, nested responses, one revision.
	before := ts.store.Rev()
	tr, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Value("a/1"), "=", "w"), clientv3.Compare(clientv3.Version("a/2"), ">", 0)).
		Then(clientv3.OpPut("b/1", "1"), clientv3.OpGet("a/", clientv3.WithPrefix()), clientv3.OpDelete("a/3"),
			clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("b/2", "2")}, nil)).
		Else(clientv3.OpPut("never", "1")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Succeeded || tr.Header.Revision != before+1 || len(tr.Responses) != 4 {
		t.Fatalf("txn: %+v, want success at %d", tr, before+1)
	}
	if got := keys(tr.Responses[1].GetResponseRange().Kvs); got != "a/1=w a/2=y a/3=x" {
		t.Errorf("txn range: %q", got)
	}
	if d := tr.Responses[2].GetResponseDeleteRange(); d.Deleted != 1 {
		t.Errorf("txn delete: %+v", d)
	}
	if r := tr.Responses[3].GetResponseTxn(); r == nil || !r.Succeeded {
		t.Errorf("nested txn: %+v", r)
	}
	tr, err = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("a/1"), "<", p1.Header.Revision)).Then(clientv3.OpPut("never", "1")).Commit()
	if err != nil || tr.Succeeded {
		t.Errorf("failing txn: %+v %v", tr, err)
	}

	// Delete a range with prev_kv.
	dr, err := c.Delete(ctx, "b/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || dr.Deleted != 2 || len(dr.PrevKvs) != 2 {
		t.Fatalf("delete prefix: %+v %v", dr, err)
	}

	// Ignore value/lease keep what is there, and refuse what etcd refuses.
	if _, err := c.Put(ctx, "a/1", "", clientv3.WithIgnoreValue()); err != nil {
		t.Errorf("put ignore_value: %v", err)
	}
	if gr, _ := c.Get(ctx, "a/1"); keys(gr.Kvs) != "a/1=w" {
		t.Errorf("after ignore_value: %q", keys(gr.Kvs))
	}
	if _, err := c.Put(ctx, "a/1", "v", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrValueProvided) {
		t.Errorf("ignore_value with a value: %v", err)
	}
	if _, err := c.Put(ctx, "nokey", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
		t.Errorf("ignore_value on a missing key: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	c := ts.cli
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	rev := ts.store.Rev()
	ops := make([]clientv3.Op, kv.MaxTxnOps+1)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprint(i), "x")
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"too large", func() error { _, err := c.Put(ctx, "big", strings.Repeat("x", kv.MaxValueSize+1)); return err }(), rpctypes.ErrRequestTooLarge},
		{"empty key", func() error { _, err := c.Put(ctx, "", "x"); return err }(), rpctypes.ErrEmptyKey},
		{"empty key get", func() error { _, err := c.Get(ctx, ""); return err }(), rpctypes.ErrEmptyKey},
		{"duplicate", func() error {
			_, err := c.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpDelete("d")).Commit()
			return err
		}(), rpctypes.ErrDuplicateKey},
		{"too many ops", func() error { _, err := c.Txn(ctx).Then(ops...).Commit(); return err }(), rpctypes.ErrTooManyOps},
		{"unknown lease", func() error { _, err := c.Put(ctx, "l", "x", clientv3.WithLease(77)); return err }(), rpctypes.ErrLeaseNotFound},
		{"future rev", func() error { _, err := c.Get(ctx, "k", clientv3.WithRev(rev+10)); return err }(), rpctypes.ErrFutureRev},
		{"lease exists", func() error {
			if _, err := c.Lease.Grant(ctx, 10); err != nil {
				return err
			}
			lr, _ := c.Leases(ctx)
			_, err := pb.NewLeaseClient(c.ActiveConnection()).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: int64(lr.Leases[0].ID), TTL: 10})
			return rpctypes.Error(err)
		}(), rpctypes.ErrLeaseExist},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// A value of exactly the limit is accepted.
	if _, err := c.Put(ctx, "max", strings.Repeat("x", kv.MaxValueSize)); err != nil {
		t.Errorf("value of 1.5 MiB: %v", err)
	}
	gr, err := c.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil || keys(gr.Kvs) != "k= max=" {
		t.Errorf("keys after bad input: %q %v, want only k and max", keys(gr.Kvs), err)
	}
}

func TestUnimplemented(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	_, err := pb.NewMaintenanceClient(ts.cli.ActiveConnection()).MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: 1})
	if s := status.Convert(err); s.Code() != codes.Unimplemented || !strings.Contains(s.Message(), "Maintenance.MoveLeader is not supported by cairn") {
		t.Errorf("move leader: %v", err)
	}
	_, err = pb.NewAuthClient(ts.cli.ActiveConnection()).AuthStatus(ctx, &pb.AuthStatusRequest{})
	if s := status.Convert(err); s.Code() != codes.Unimplemented || !strings.Contains(s.Message(), "Auth.AuthStatus is not supported") {
		t.Errorf("auth status: %v", err)
	}
	st, err := ts.cli.Status(ctx, ts.addr)
	if err != nil || st.Version != serverVersion || st.Leader != memberID || st.Header.Revision != ts.store.Rev() {
		t.Errorf("status: %+v %v", st, err)
	}
	ml, err := ts.cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 1 || ml.Members[0].ClientURLs[0] != "http://"+ts.addr {
		t.Errorf("member list: %+v %v", ml, err)
	}
}

func TestLease(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	c := ts.cli
	lg, err := c.Grant(ctx, 30)
	if err != nil || lg.TTL != 30 || lg.ID == 0 {
		t.Fatalf("grant: %+v %v", lg, err)
	}
	c.Put(ctx, "l/1", "x", clientv3.WithLease(lg.ID))
	c.Put(ctx, "l/2", "x", clientv3.WithLease(lg.ID))
	ttl, err := c.TimeToLive(ctx, lg.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 30 || ttl.TTL < 29 || len(ttl.Keys) != 2 {
		t.Errorf("timetolive: %+v %v", ttl, err)
	}
	ka, err := c.KeepAliveOnce(ctx, lg.ID)
	if err != nil || ka.TTL != 30 {
		t.Errorf("keepalive once: %+v %v", ka, err)
	}
	ls, err := c.Leases(ctx)
	if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != lg.ID {
		t.Errorf("leases: %+v %v", ls, err)
	}
	// An unknown lease in the keepalive stream answers TTL 0, as etcd.
	stream, err := pb.NewLeaseClient(c.ActiveConnection()).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.LeaseKeepAliveRequest{ID: 12345})
	if r, err := stream.Recv(); err != nil || r.TTL != 0 || r.ID != 12345 {
		t.Errorf("keepalive of an unknown lease: %+v %v", r, err)
	}
	stream.CloseSend()
	rr, err := c.Revoke(ctx, lg.ID)
	if err != nil || rr.Header.Revision != ts.store.Rev() {
		t.Fatalf("revoke: %+v %v", rr, err)
	}
	if gr, _ := c.Get(ctx, "l/", clientv3.WithPrefix()); len(gr.Kvs) != 0 {
		t.Errorf("keys of a revoked lease: %q", keys(gr.Kvs))
	}
	if ttl, err := c.TimeToLive(ctx, lg.ID); err != nil || ttl.TTL != -1 {
		t.Errorf("timetolive of a revoked lease: %+v %v", ttl, err)
	}
}

// recvWatch reads the next WatchResponse of a raw stream.
func recvWatch(t *testing.T, s pb.Watch_WatchClient) *pb.WatchResponse {
	t.Helper()
	type res struct {
		r   *pb.WatchResponse
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := s.Recv(); ch <- res{r, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response within 10s")
	}
	return nil
}

func TestWatchRaw(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	c := ts.cli
	p1, _ := c.Put(ctx, "w/1", "a")
	c.Put(ctx, "w/1", "b")
	c.Delete(ctx, "w/1")

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := pb.NewWatchClient(c.ActiveConnection()).Watch(sctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func(r *pb.WatchCreateRequest) {
		if err := s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: r}}); err != nil {
			t.Fatal(err)
		}
	}
	// Replay from the first put with prev_kv and without deletes.
	create(&pb.WatchCreateRequest{Key: []byte("w/"), RangeEnd: []byte("w0"), StartRevision: p1.Header.Revision, PrevKv: true,
		Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}, WatchId: 7})
	if r := recvWatch(t, s); !r.Created || r.WatchId != 7 || r.Header.Revision != ts.store.Rev() {
		t.Fatalf("create: %+v", r)
	}
	r := recvWatch(t, s)
	if r.WatchId != 7 || len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "a" || r.Events[0].PrevKv != nil || r.Header.Revision != p1.Header.Revision {
		t.Fatalf("first event: %+v", r)
	}
	r = recvWatch(t, s)
	if len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "b" || r.Events[0].PrevKv == nil || string(r.Events[0].PrevKv.Value) != "a" {
		t.Fatalf("second event: %+v", r)
	}
	// A duplicate id is refused, created and canceled at once.
	create(&pb.WatchCreateRequest{Key: []byte("x"), WatchId: 7})
	if r := recvWatch(t, s); !r.Created || !r.Canceled || r.WatchId != invalidWatchID || r.CancelReason == "" {
		t.Fatalf("duplicate id: %+v", r)
	}
	// Progress on request, then live events, then cancel. A notification
	// says every event up to its revision went out: never past the store's
	// revision, and the store's once the watch has caught up with its own
	// bookkeeping (which may trail the last event sent by a moment).
	for i := 0; ; i++ {
		s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
		r := recvWatch(t, s)
		if r.WatchId != invalidWatchID || len(r.Events) != 0 || r.Header.Revision > ts.store.Rev() {
			t.Fatalf("progress: %+v (rev %d)", r, ts.store.Rev())
		}
		if r.Header.Revision == ts.store.Rev() {
			break
		}
		if i == 100 {
			t.Fatalf("progress stays at %d, the store is at %d", r.Header.Revision, ts.store.Rev())
		}
	}
	pr, _ := c.Put(ctx, "w/2", "c")
	if r := recvWatch(t, s); len(r.Events) != 1 || r.Header.Revision != pr.Header.Revision {
		t.Fatalf("live event: %+v", r)
	}
	s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	if r := recvWatch(t, s); !r.Canceled || r.WatchId != 7 {
		t.Fatalf("cancel: %+v", r)
	}
	// An auto id, with periodic progress notifications.
	create(&pb.WatchCreateRequest{Key: []byte("quiet"), ProgressNotify: true})
	r = recvWatch(t, s)
	if !r.Created || r.WatchId != 0 {
		t.Fatalf("auto id: %+v", r)
	}
	if r := recvWatch(t, s); r.WatchId != 0 || len(r.Events) != 0 || r.Header.Revision != ts.store.Rev() || r.Created || r.Canceled {
		t.Fatalf("periodic progress: %+v", r)
	}
}

func TestWatchClient(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	c := ts.cli
	wch := c.Watch(ctx, "t/", clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithFilterPut())
	<-wch
	tr, err := c.Txn(ctx).Then(clientv3.OpPut("t/a", "1"), clientv3.OpPut("t/b", "1")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	// Only puts: filtered out entirely, so the next response is the delete.
	dr, err := c.Delete(ctx, "t/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	r := <-wch
	if len(r.Events) != 2 || r.Header.Revision != dr.Header.Revision || r.Events[0].Type != clientv3.EventTypeDelete || dr.Header.Revision <= tr.Header.Revision {
		t.Fatalf("prefix delete: %+v", r)
	}
}

// TestStopEndsStreams requires stop to end open watch and keepalive
// streams promptly.
func TestStopEndsStreams(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	wch := ts.cli.Watch(ctx, "x", clientv3.WithCreatedNotify())
	<-wch
	lg, _ := ts.cli.Grant(ctx, 60)
	if _, err := ts.cli.KeepAlive(ctx, lg.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stop took %v with streams open", el)
	}
}
