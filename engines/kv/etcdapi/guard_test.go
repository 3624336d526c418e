package etcdapi

import (
	"context"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
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
// client grew the daemon to the OOM killer.)
func TestWatchCapPerConnection(t *testing.T) {
	old := maxWatchesPerConn
	maxWatchesPerConn = 5
	t.Cleanup(func() { maxWatchesPerConn = old })
	ts := newTestServer(t)
	ctx := testCtx(t)
	var cancels []func()
	for i := range 5 {
		wctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		wch := ts.cli.Watch(clientv3.WithRequireLeader(wctx), "k", clientv3.WithCreatedNotify())
		if r := <-wch; !r.Created || r.Canceled {
			t.Fatalf("watch %d: %+v", i+1, r)
		}
	}
	wch := ts.cli.Watch(ctx, "k", clientv3.WithCreatedNotify())
	r := <-wch
	if !r.Canceled || !strings.Contains(r.Err().Error(), "too many watches") {
		t.Fatalf("watch over the cap: canceled %v err %v", r.Canceled, r.Err())
	}
	cancels[0]()
	deadline := time.Now().Add(10 * time.Second)
	for {
		wctx, cancel := context.WithCancel(ctx)
		r := <-ts.cli.Watch(wctx, "k", clientv3.WithCreatedNotify())
		cancel()
		if r.Created && !r.Canceled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot came back after a watch ended: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range cancels {
		c()
	}
}
