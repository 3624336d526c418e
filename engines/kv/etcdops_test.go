package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/journal"
)

// The datadriven commands `range` and `txn` drive the Store with etcd's
// request shapes, which the DSL does not spell (sort, revision filters, a
// past revision inside a txn):
//
//	range
//	get KEY [prefix|from] [rev=N] [limit=N] [sort=key|version|create|mod|value]
//	    [order=none|ascend|descend] [min-mod=N] [max-mod=N] [min-create=N]
//	    [max-create=N] [keys-only] [count-only]
//
//	txn
//	if CMP            (etcdctl's compare syntax, as kv txn's)
//	then OP           (put KEY VALUE [lease=ID] | del KEY [prefix] | get … as above)
//	else OP
//
// Answers: a range as {count, more, rev, kvs: ["key=value c=CREATE m=MOD
// v=VERSION"]}, a txn as {succeeded, rev, responses}.

func (e *env) etcdRange(ctx context.Context, input string) string {
	op, err := parseEtcdOp(strings.TrimSpace(input))
	if err != nil || op.Range == nil {
		return fmt.Sprintf("bad range %q: %v", input, err)
	}
	resp, err := e.s.Range(ctx, *op.Range)
	if err != nil {
		return errString(err)
	}
	return jsonLine(rangeOut(&resp))
}

func (e *env) etcdTxn(ctx context.Context, input string) string {
	var t TxnRequest
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		part, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch part {
		case "if":
			c, err := ParseCompare(dsl.Word{Text: rest})
			if err != nil {
				return fmt.Sprintf("bad compare %q: %v", rest, err)
			}
			t.Compare = append(t.Compare, c)
		case "then", "else":
			op, err := parseEtcdOp(rest)
			if err != nil {
				return fmt.Sprintf("bad op %q: %v", rest, err)
			}
			if part == "then" {
				t.Success = append(t.Success, op)
			} else {
				t.Failure = append(t.Failure, op)
			}
		default:
			return fmt.Sprintf("bad txn line %q: want if, then or else", line)
		}
	}
	resp, err := e.s.Txn(ctx, actor, t)
	if err != nil {
		return errString(err)
	}
	return jsonLine(txnOut(&resp))
}

func parseEtcdOp(line string) (Op, error) {
	w := strings.Fields(line)
	if len(w) < 2 {
		return Op{}, fmt.Errorf("want VERB KEY …")
	}
	verb, key, rest := w[0], []byte(w[1]), w[2:]
	switch verb {
	case "put":
		if len(rest) < 1 {
			return Op{}, fmt.Errorf("put wants a value")
		}
		p := &PutRequest{Key: key, Value: []byte(rest[0])}
		for _, o := range rest[1:] {
			if v, ok := strings.CutPrefix(o, "lease="); ok {
				id, err := ParseLeaseID(v)
				if err != nil {
					return Op{}, err
				}
				p.Lease = id
			}
		}
		return Op{Put: p}, nil
	case "del":
		d := &DeleteRequest{Key: key}
		if len(rest) > 0 && rest[0] == "prefix" {
			d.End = PrefixEnd(key)
		}
		return Op{Delete: d}, nil
	case "get":
		r := &RangeRequest{Key: key}
		for _, o := range rest {
			name, val, _ := strings.Cut(o, "=")
			n, _ := strconv.ParseInt(val, 10, 64)
			switch name {
			case "prefix":
				r.End = PrefixEnd(key)
			case "from":
				r.End = []byte{0}
			case "keys-only":
				r.KeysOnly = true
			case "count-only":
				r.CountOnly = true
			case "rev":
				r.Rev = n
			case "limit":
				r.Limit = n
			case "min-mod":
				r.MinModRev = n
			case "max-mod":
				r.MaxModRev = n
			case "min-create":
				r.MinCreateRev = n
			case "max-create":
				r.MaxCreateRev = n
			case "sort":
				t, ok := map[string]SortTarget{"key": SortByKey, "version": SortByVersion, "create": SortByCreate, "mod": SortByMod, "value": SortByValue}[val]
				if !ok {
					t = SortTarget(n) // a number: out-of-range targets
				}
				r.SortTarget = t
			case "order":
				switch val {
				case "none":
					r.SortOrder = SortNone
				case "ascend":
					r.SortOrder = SortAscend
				case "descend":
					r.SortOrder = SortDescend
				default:
					r.SortOrder = SortOrder(n)
				}
			default:
				return Op{}, fmt.Errorf("unknown get option %q", o)
			}
		}
		return Op{Range: r}, nil
	}
	return Op{}, fmt.Errorf("unknown verb %q", verb)
}

func rangeOut(r *RangeResponse) map[string]any {
	kvs := make([]string, len(r.KVs))
	for i, kv := range r.KVs {
		kvs[i] = fmt.Sprintf("%s=%s c=%d m=%d v=%d", kv.Key, kv.Value, kv.CreateRev, kv.ModRev, kv.Version)
	}
	return map[string]any{"count": r.Count, "more": r.More, "rev": r.Rev, "kvs": kvs}
}

func txnOut(t *TxnResponse) map[string]any {
	rs := make([]any, len(t.Responses))
	for i, o := range t.Responses {
		switch {
		case o.Put != nil:
			rs[i] = map[string]any{"put": o.Put.Rev}
		case o.Delete != nil:
			rs[i] = map[string]any{"deleted": o.Delete.Deleted}
		case o.Range != nil:
			rs[i] = rangeOut(o.Range)
		case o.Txn != nil:
			rs[i] = txnOut(o.Txn)
		}
	}
	return map[string]any{"succeeded": t.Succeeded, "rev": t.Rev, "responses": rs}
}

func jsonLine(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b) + "\n"
}

// TestHashKV: the hash describes the KV state at a revision, so it is the
// same at a past revision as it was then, after a restart and after a
// rebuild, and lease events (which leave the state) do not change it.
func TestHashKV(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	put := func(k, v string) int64 {
		t.Helper()
		r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte(k), Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Rev
	}
	hash := func(rev int64) (uint32, int64) {
		t.Helper()
		h, at, err := e.s.HashKV(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		return h, at
	}
	put("a", "1")
	r2 := put("b\x00x", "2")
	h1, at1 := hash(0)
	if at1 != r2 {
		t.Fatalf("HashKV(0) at revision %d, want %d", at1, r2)
	}
	if _, err := e.s.LeaseGrant(ctx, actor, 0, 60); err != nil {
		t.Fatal(err)
	}
	if h, at := hash(0); h != h1 || at != r2 {
		t.Fatalf("after a lease grant: %08x at %d, want %08x at %d", h, at, h1, r2)
	}
	r3 := put("a", "3")
	h2, _ := hash(0)
	if h2 == h1 {
		t.Fatal("the hash did not change with the state")
	}
	if h, at := hash(r2); h != h1 || at != r2 {
		t.Fatalf("HashKV(%d) = %08x at %d, want %08x as it was then", r2, h, at, h1)
	}
	if _, err := e.s.Delete(ctx, actor, DeleteRequest{Key: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	h3, _ := hash(0)
	e.restart()
	if h, _ := hash(0); h != h3 {
		t.Fatalf("after a restart: %08x, want %08x", h, h3)
	}
	if err := e.j.Stream(journal.Audit).Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := hash(r3); h != h2 {
		t.Fatalf("HashKV(%d) after a rebuild: %08x, want %08x", r3, h, h2)
	}
	if _, _, err := e.s.HashKV(ctx, 1000); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("HashKV of a future revision: %v, want ErrFutureRev", err)
	}
}
