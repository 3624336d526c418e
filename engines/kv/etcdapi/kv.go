package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/engines/kv"
)

// kvService is etcd's KV service on the KV engine.
type kvService struct {
	pb.UnimplementedKVServer
	*server
}

// Range reads keys, filtered by revision, sorted and cut where asked (the
// KV engine does all of it, as it does for a range inside a txn). The
// header carries the current KV revision, also when the range reads a
// past one, as etcd's does.
func (k *kvService) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	k.counts.rng.Add(1)
	if err := k.checkCompacted(r.Revision); err != nil {
		return nil, err
	}
	rr, err := k.store.Range(ctx, fromRange(r))
	if err != nil {
		return nil, toGRPC(err)
	}
	return toRangeResponse(&rr), nil
}

// fromRange converts a RangeRequest; the engine's sort enums are etcd's.
func fromRange(r *pb.RangeRequest) kv.RangeRequest {
	return kv.RangeRequest{
		Key: r.Key, End: r.RangeEnd, Rev: r.Revision, Limit: r.Limit, KeysOnly: r.KeysOnly, CountOnly: r.CountOnly,
		SortOrder: kv.SortOrder(r.SortOrder), SortTarget: kv.SortTarget(r.SortTarget),
		MinModRev: r.MinModRevision, MaxModRev: r.MaxModRevision,
		MinCreateRev: r.MinCreateRevision, MaxCreateRev: r.MaxCreateRevision,
	}
}

func toRangeResponse(rr *kv.RangeResponse) *pb.RangeResponse {
	resp := &pb.RangeResponse{Header: header(rr.Rev), Count: rr.Count, More: rr.More}
	if len(rr.KVs) > 0 {
		resp.Kvs = make([]*mvccpb.KeyValue, len(rr.KVs))
		for i := range rr.KVs {
			resp.Kvs[i] = toKV(&rr.KVs[i])
		}
	}
	return resp
}

// Put writes one key.
func (k *kvService) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	k.counts.put.Add(1)
	req, err := fromPut(r)
	if err != nil {
		return nil, err
	}
	if err := k.refuseWrite(true); err != nil {
		return nil, err
	}
	pr, err := k.store.Put(ctx, k.callerOf(ctx), req)
	if err != nil {
		return nil, k.writeErr(err)
	}
	return toPutResponse(pr), nil
}

// fromPut converts a PutRequest, with etcd's checks of the ignore flags.
func fromPut(r *pb.PutRequest) (kv.PutRequest, error) {
	if r.IgnoreValue && len(r.Value) != 0 {
		return kv.PutRequest{}, rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return kv.PutRequest{}, rpctypes.ErrGRPCLeaseProvided
	}
	return kv.PutRequest{Key: r.Key, Value: r.Value, Lease: r.Lease, PrevKV: r.PrevKv, IgnoreValue: r.IgnoreValue, IgnoreLease: r.IgnoreLease}, nil
}

func toPutResponse(pr kv.PutResponse) *pb.PutResponse {
	return &pb.PutResponse{Header: header(pr.Rev), PrevKv: toKVPtr(pr.PrevKV)}
}

// DeleteRange deletes one key or a range.
func (k *kvService) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	k.counts.del.Add(1)
	if err := k.refuseWrite(false); err != nil {
		return nil, err
	}
	dr, err := k.store.Delete(ctx, k.callerOf(ctx), fromDelete(r))
	if err != nil {
		return nil, k.writeErr(err)
	}
	return toDeleteResponse(dr), nil
}

func fromDelete(r *pb.DeleteRangeRequest) kv.DeleteRequest {
	return kv.DeleteRequest{Key: r.Key, End: r.RangeEnd, PrevKV: r.PrevKv}
}

func toDeleteResponse(dr kv.DeleteResponse) *pb.DeleteRangeResponse {
	resp := &pb.DeleteRangeResponse{Header: header(dr.Rev), Deleted: dr.Deleted}
	for i := range dr.PrevKVs {
		resp.PrevKvs = append(resp.PrevKvs, toKV(&dr.PrevKVs[i]))
	}
	return resp
}

// Txn runs a transaction as one revision.
func (k *kvService) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	k.counts.txn.Add(1)
	req, err := fromTxn(r)
	if err != nil {
		return nil, err
	}
	if err := k.checkTxnCompacted(req.Success); err != nil {
		return nil, err
	}
	if err := k.checkTxnCompacted(req.Failure); err != nil {
		return nil, err
	}
	if !readOnly(req.Success) || !readOnly(req.Failure) {
		if err := k.refuseWrite(hasPut(req.Success) || hasPut(req.Failure)); err != nil {
			return nil, err
		}
	}
	tr, err := k.store.Txn(ctx, k.callerOf(ctx), req)
	if err != nil {
		return nil, k.writeErr(err)
	}
	return toTxnResponse(tr), nil
}

// Compact records a compaction (a kv.compact event) and drops nothing:
// history stays readable through cairn's own verbs. When the API honours
// compaction, reads and watches below the revision answer ErrCompacted
// from now on, as etcd's; physical makes no difference, as the event is
// durable when Compact answers.
func (k *kvService) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := k.refuseWrite(false); err != nil {
		return nil, err
	}
	rev, err := k.store.Compact(ctx, k.callerOf(ctx), r.Revision, r.Physical)
	if err != nil {
		return nil, k.writeErr(err)
	}
	return &pb.CompactionResponse{Header: header(rev)}, nil
}

// checkCompacted answers etcd's ErrCompacted for a read at a revision
// below the latest compaction, when the API honours compaction (revision
// 0 is "now"; the compact revision itself stays readable, as in etcd).
func (s *server) checkCompacted(rev int64) error {
	if rev <= 0 || !s.store.HonoursCompaction() {
		return nil
	}
	if c := s.store.CompactRev(); rev < c {
		return rpctypes.ErrGRPCCompacted
	}
	return nil
}

// checkTxnCompacted is checkCompacted for every range of a txn branch, at
// any depth: etcd refuses the whole txn before it runs.
func (s *server) checkTxnCompacted(ops []kv.Op) error {
	for _, o := range ops {
		switch {
		case o.Range != nil:
			if err := s.checkCompacted(o.Range.Rev); err != nil {
				return err
			}
		case o.Txn != nil:
			if err := s.checkTxnCompacted(o.Txn.Success); err != nil {
				return err
			}
			if err := s.checkTxnCompacted(o.Txn.Failure); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasPut reports whether a txn branch puts a key, at any depth.
func hasPut(ops []kv.Op) bool {
	for _, o := range ops {
		if o.Put != nil || (o.Txn != nil && (hasPut(o.Txn.Success) || hasPut(o.Txn.Failure))) {
			return true
		}
	}
	return false
}

// readOnly reports whether a txn branch only reads, at any depth.
func readOnly(ops []kv.Op) bool {
	for _, o := range ops {
		if o.Put != nil || o.Delete != nil || (o.Txn != nil && (!readOnly(o.Txn.Success) || !readOnly(o.Txn.Failure))) {
			return false
		}
	}
	return true
}

func fromTxn(r *pb.TxnRequest) (kv.TxnRequest, error) {
	var t kv.TxnRequest
	for _, c := range r.Compare {
		if c == nil {
			continue
		}
		cmp := kv.Compare{Key: c.Key, End: c.RangeEnd, Target: kv.CompareTarget(c.Target), Result: kv.CompareResult(c.Result)}
		switch u := c.TargetUnion.(type) {
		case *pb.Compare_Version:
			cmp.Int = u.Version
		case *pb.Compare_CreateRevision:
			cmp.Int = u.CreateRevision
		case *pb.Compare_ModRevision:
			cmp.Int = u.ModRevision
		case *pb.Compare_Lease:
			cmp.Int = u.Lease
		case *pb.Compare_Value:
			cmp.Value = u.Value
		}
		if c.Target < pb.Compare_VERSION || c.Target > pb.Compare_LEASE || c.Result < pb.Compare_EQUAL || c.Result > pb.Compare_NOT_EQUAL {
			return t, status.Errorf(codes.InvalidArgument, "etcdserver: unknown compare target %d or result %d", c.Target, c.Result)
		}
		t.Compare = append(t.Compare, cmp)
	}
	var err error
	if t.Success, err = fromOps(r.Success); err != nil {
		return t, err
	}
	if t.Failure, err = fromOps(r.Failure); err != nil {
		return t, err
	}
	return t, nil
}

func fromOps(ops []*pb.RequestOp) ([]kv.Op, error) {
	out := make([]kv.Op, 0, len(ops))
	for _, op := range ops {
		if op == nil {
			continue
		}
		switch u := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if u.RequestRange == nil {
				return nil, status.Error(codes.InvalidArgument, "etcdserver: txn operation without a request")
			}
			r := fromRange(u.RequestRange)
			out = append(out, kv.Op{Range: &r})
		case *pb.RequestOp_RequestPut:
			p, err := fromPut(u.RequestPut)
			if err != nil {
				return nil, err
			}
			out = append(out, kv.Op{Put: &p})
		case *pb.RequestOp_RequestDeleteRange:
			d := fromDelete(u.RequestDeleteRange)
			out = append(out, kv.Op{Delete: &d})
		case *pb.RequestOp_RequestTxn:
			t, err := fromTxn(u.RequestTxn)
			if err != nil {
				return nil, err
			}
			out = append(out, kv.Op{Txn: &t})
		default:
			return nil, status.Error(codes.InvalidArgument, "etcdserver: txn operation without a request")
		}
	}
	return out, nil
}

func toTxnResponse(tr kv.TxnResponse) *pb.TxnResponse {
	resp := &pb.TxnResponse{Header: header(tr.Rev), Succeeded: tr.Succeeded}
	for _, o := range tr.Responses {
		var op pb.ResponseOp
		switch {
		case o.Put != nil:
			op.Response = &pb.ResponseOp_ResponsePut{ResponsePut: toPutResponse(*o.Put)}
		case o.Range != nil:
			op.Response = &pb.ResponseOp_ResponseRange{ResponseRange: toRangeResponse(o.Range)}
		case o.Delete != nil:
			op.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: toDeleteResponse(*o.Delete)}
		case o.Txn != nil:
			op.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: toTxnResponse(*o.Txn)}
		}
		resp.Responses = append(resp.Responses, &op)
	}
	return resp
}

func toKV(x *kv.KeyValue) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: x.Key, Value: x.Value, CreateRevision: x.CreateRev, ModRevision: x.ModRev, Version: x.Version, Lease: x.Lease}
}

func toKVPtr(x *kv.KeyValue) *mvccpb.KeyValue {
	if x == nil {
		return nil
	}
	return toKV(x)
}
