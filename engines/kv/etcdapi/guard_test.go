package etcdapi

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnhq/cairn/journal"
)

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:2379": true, "[::1]:2379": true, "localhost:2379": true, "127.0.0.5:0": true,
		":2379": false, "0.0.0.0:2379": false, "10.1.2.3:2379": false, "[::]:2379": false, "etcd:2379": false,
	} {
		err := checkLoopback(addr)
		if (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "beyond loopback") && !strings.Contains(err.Error(), "HOST:PORT") {
			t.Errorf("checkLoopback(%q): %v does not say why", addr, err)
		}
	}
}

func TestWritesAreNamed(t *testing.T) {
	if v := verbOf("/etcdserverpb.KV/DeleteRange"); v != "etcd deleterange" {
		t.Errorf("verbOf = %q", v)
	}
	read := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a")}}}}}
	write := &pb.TxnRequest{Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a")}}}}}
	nested := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: write}}}}
	if txnWrites(read) || !txnWrites(write) || !txnWrites(nested) {
		t.Errorf("txnWrites: read %v write %v nested %v", txnWrites(read), txnWrites(write), txnWrites(nested))
	}
}

// TestWatchCapPerConnection: one connection holds at most
// maxWatchesPerConn watches; the next is canceled with a reason, and a
// slot comes back when a watch ends. (Issue 11: 300k watches from one
// client grew the daemon to the OOM killer.) It speaks the Watch protocol
// on the client's connection directly, so every answer is read in order.
func TestWatchCapPerConnection(t *testing.T) {
	old := maxWatchesPerConn
	maxWatchesPerConn = 5
	t.Cleanup(func() { maxWatchesPerConn = old })
	ts := newTestServer(t)
	ctx := testCtx(t)
	stream, err := pb.NewWatchClient(ts.cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func() *pb.WatchResponse {
		t.Helper()
		if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k")}}}); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var ids []int64
	for i := range 5 {
		r := create()
		if !r.Created || r.Canceled {
			t.Fatalf("watch %d: %+v", i+1, r)
		}
		ids = append(ids, r.WatchId)
	}
	if r := create(); !r.Canceled || !strings.Contains(r.CancelReason, "too many watches") {
		t.Fatalf("watch over the cap: %+v, want canceled with a reason", r)
	}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: ids[0]}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || !r.Canceled || r.WatchId != ids[0] {
		t.Fatalf("cancel of watch %d: %+v, %v", ids[0], r, err)
	}
	// The slot comes back once the canceled watch's goroutine has ended,
	// which its canceled answer waits for.
	if r := create(); !r.Created || r.Canceled {
		t.Fatalf("a watch after one ended: %+v", r)
	}
}

// TestConnCapPerUID: a non-root uid holds at most maxConnsPerUID
// connections to the etcd API (the next is closed at accept) and gets a
// slot back when one closes; root is bounded only by the total.
func TestConnCapPerUID(t *testing.T) {
	old := maxConnsPerUID
	maxConnsPerUID = 2
	t.Cleanup(func() { maxConnsPerUID = old })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := newConns(lis)
	defer cl.Close()
	var uid atomic.Int64 // the uid the next connection is attributed to
	cl.actorOf = func(_, remote net.Addr) journal.Actor {
		return journal.Actor{UID: int(uid.Load()), Via: "etcd", Addr: remote.String()}
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := cl.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	// dial connects as uid u and reports whether the daemon kept the
	// connection: a refused one is closed at accept, before the next
	// connection is taken.
	dial := func(u int64) net.Conn {
		t.Helper()
		uid.Store(u)
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) bool {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	a, b := dial(1000), dial(1000)
	sa, sb := <-accepted, <-accepted
	over := dial(1000)
	if !closedByServer(over) {
		t.Fatal("a third connection of uid 1000 was kept, over a cap of 2")
	}
	root := dial(0)
	if sr := <-accepted; sr == nil {
		t.Fatal("root's connection was refused")
	}
	_ = root
	// One of uid 1000's connections ends: its slot comes back.
	sa.Close()
	a.Close()
	dial(1000)
	if c := <-accepted; c == nil {
		t.Fatal("uid 1000 got no slot back after a close")
	}
	_, _ = b, sb
}
