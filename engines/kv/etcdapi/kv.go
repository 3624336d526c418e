package etcdapi

import (
	"bytes"
	"context"
	"slices"

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

// Range reads keys, sorting and filtering by revision where asked (the
// engine reads in key order; everything else happens here, as etcd does it
// above its own store).
func (k *kvService) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	resp, err := k.rangeKV(ctx, r)
	return resp, toGRPC(err)
}

func (k *kvService) rangeKV(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	req := kv.RangeRequest{Key: r.Key, End: r.RangeEnd, Rev: r.Revision, Limit: r.Limit, KeysOnly: r.KeysOnly, CountOnly: r.CountOnly}

	order, target := r.SortOrder, r.SortTarget
	if order == pb.RangeRequest_NONE && target != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND // as etcd: a target without an order ascends
	}
	if target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND {
		order = pb.RangeRequest_NONE // the engine's own order
	}
	filtered := r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
	post := (order != pb.RangeRequest_NONE || filtered) && !r.CountOnly
	if post {
		req.Limit = 0 // sort or filter everything, then cut
		if target == pb.RangeRequest_VALUE {
			req.KeysOnly = false
		}
	}
	if order < pb.RangeRequest_NONE || order > pb.RangeRequest_DESCEND || target < pb.RangeRequest_KEY || target > pb.RangeRequest_VALUE {
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: unknown sort order %d or sort target %d", order, target)
	}

	rr, err := k.store.Range(ctx, req)
	if err != nil {
		return nil, err
	}
	kvs := rr.KVs
	more := rr.More
	if post {
		if filtered {
			kvs = slices.DeleteFunc(kvs, func(x kv.KeyValue) bool {
				return (r.MinModRevision > 0 && x.ModRev < r.MinModRevision) ||
					(r.MaxModRevision > 0 && x.ModRev > r.MaxModRevision) ||
					(r.MinCreateRevision > 0 && x.CreateRev < r.MinCreateRevision) ||
					(r.MaxCreateRevision > 0 && x.CreateRev > r.MaxCreateRevision)
			})
		}
		if order != pb.RangeRequest_NONE {
			sortKVs(kvs, target, order == pb.RangeRequest_DESCEND)
		}
		more = false
		if r.Limit > 0 && int64(len(kvs)) > r.Limit {
			kvs, more = kvs[:r.Limit], true
		}
	}
	resp := &pb.RangeResponse{Header: header(rr.Rev), Count: rr.Count, More: more}
	if len(kvs) > 0 {
		resp.Kvs = make([]*mvccpb.KeyValue, len(kvs))
		for i := range kvs {
			if r.KeysOnly {
				kvs[i].Value = nil
			}
			resp.Kvs[i] = toKV(&kvs[i])
		}
	}
	return resp, nil
}

// sortKVs sorts stably by target, so that keys stay in key order among
// equals, as etcd's sort does.
func sortKVs(kvs []kv.KeyValue, target pb.RangeRequest_SortTarget, desc bool) {
	cmp := func(a, b kv.KeyValue) int {
		switch target {
		case pb.RangeRequest_VERSION:
			return compareInt(a.Version, b.Version)
		case pb.RangeRequest_CREATE:
			return compareInt(a.CreateRev, b.CreateRev)
		case pb.RangeRequest_MOD:
			return compareInt(a.ModRev, b.ModRev)
		case pb.RangeRequest_VALUE:
			return bytes.Compare(a.Value, b.Value)
		}
		return bytes.Compare(a.Key, b.Key)
	}
	if desc {
		slices.SortStableFunc(kvs, func(a, b kv.KeyValue) int { return cmp(b, a) })
	} else {
		slices.SortStableFunc(kvs, cmp)
	}
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Put writes one key.
func (k *kvService) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	req, err := fromPut(r)
	if err != nil {
		return nil, err
	}
	pr, err := k.store.Put(ctx, actor(ctx), req)
	if err != nil {
		return nil, toGRPC(err)
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
	dr, err := k.store.Delete(ctx, actor(ctx), fromDelete(r))
	if err != nil {
		return nil, toGRPC(err)
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
	req, err := fromTxn(r)
	if err != nil {
		return nil, err
	}
	tr, err := k.store.Txn(ctx, actor(ctx), req)
	if err != nil {
		return nil, toGRPC(err)
	}
	return toTxnResponse(tr), nil
}

// Compact is refused: cairn never compacts its history.
func (k *kvService) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return nil, status.Error(codes.Unimplemented, "cairn keeps all history; compaction is not supported")
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
			r := u.RequestRange
			if r.SortOrder != pb.RangeRequest_NONE || r.SortTarget != pb.RangeRequest_KEY ||
				r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
				return nil, status.Error(codes.InvalidArgument, "etcdserver: sorting and revision filters are not supported inside a txn by cairn; sort the answer or use a plain Range")
			}
			out = append(out, kv.Op{Range: &kv.RangeRequest{Key: r.Key, End: r.RangeEnd, Rev: r.Revision, Limit: r.Limit, KeysOnly: r.KeysOnly, CountOnly: r.CountOnly}})
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
			rr := &pb.RangeResponse{Header: header(o.Range.Rev), Count: o.Range.Count, More: o.Range.More}
			for i := range o.Range.KVs {
				rr.Kvs = append(rr.Kvs, toKV(&o.Range.KVs[i]))
			}
			op.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
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
