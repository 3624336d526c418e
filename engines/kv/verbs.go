package kv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func putSpec(verb string) dsl.Spec {
	return dsl.Spec{
		Verb:    verb,
		Access:  dsl.AccessWrite,
		Summary: "write a key",
		Help: "kv put KEY VALUE writes one key as one revision and answers {rev}; prev adds the\n" +
			"previous version (prev_kv); lease=ID (hex) attaches the key to a lease.\n\n" +
			"  kv put app/db/url \"postgres://db:5432/app\"\n  kv put svc/a 10.0.0.1 lease=694d77aa9e38260f prev",
		Args:    []dsl.Arg{{Name: "KEY", Required: true, Help: "the key"}, {Name: "VALUE", Required: true, Help: "the value"}},
		Flags:   []dsl.Flag{{Name: "prev", Help: "answer the previous version too"}},
		Options: []dsl.Option{{Name: "lease", Meta: "ID", Help: "attach to lease ID (hex)"}},
	}
}

func getSpec(verb string) dsl.Spec {
	return dsl.Spec{
		Verb:    verb,
		Access:  dsl.AccessRead,
		Summary: "read keys, now or at a past revision",
		Help: "kv get KEY answers the key as a row {key, value, create_rev, mod_rev, version, lease};\n" +
			"prefix reads every key starting with KEY; at=SEQ or at=TIME reads history.\n\n" +
			"  kv get app/ prefix\n  kv get app/db/url at=1200\n  kv get app/db/url at=2026-11-25T10:00:00Z",
		Args: []dsl.Arg{{Name: "KEY", Required: true, Help: "the key, or the prefix with prefix"}},
		Flags: []dsl.Flag{
			{Name: "prefix", Help: "every key starting with KEY"},
			{Name: "keys-only", Help: "leave out the values"},
			{Name: "count-only", Help: "answer only {count}; with limit=N also more (would N cut the keys?)"},
		},
		Options: []dsl.Option{
			{Name: "at", Kind: dsl.SeqOrTime, Help: "read at revision SEQ, or at the last revision at or before TIME"},
			{Name: "limit", Kind: dsl.Int, Help: "at most N keys"},
		},
	}
}

func delSpec(verb string) dsl.Spec {
	return dsl.Spec{
		Verb:    verb,
		Access:  dsl.AccessWrite,
		Summary: "delete a key or a prefix",
		Help:    "kv del KEY deletes one key (every key starting with KEY with prefix) as one revision.\n\n  kv del app/db/url\n  kv del app/ prefix prev",
		Args:    []dsl.Arg{{Name: "KEY", Required: true, Help: "the key, or the prefix with prefix"}},
		Flags:   []dsl.Flag{{Name: "prefix", Help: "every key starting with KEY"}, {Name: "prev", Help: "answer the deleted versions"}},
	}
}

// verbs is the kv engine's part of the verb table, sorted by verb.
func verbs(s *Store) []engines.Verb {
	put, get, del := putSpec("kv put"), getSpec("kv get"), delSpec("kv del")
	return []engines.Verb{
		{Spec: del, Run: s.runDel},
		{Spec: get, Run: s.runGet},
		{Spec: dsl.Spec{
			Verb:    "kv history",
			Access:  dsl.AccessRead,
			Summary: "every version of a key, with time and actor",
			Help:    "kv history KEY answers every version of KEY, oldest first (all of them unless limit= is given).\n\n  kv history app/db/url\n  kv history app/db/url limit=10 reverse",
			Args:    []dsl.Arg{{Name: "KEY", Required: true, Help: "the key"}},
			Flags:   []dsl.Flag{{Name: "reverse", Help: "newest first"}},
			Options: []dsl.Option{{Name: "limit", Kind: dsl.Int, Help: "at most N versions"}},
		}, Run: s.runHistory},
		{Spec: put, Run: s.runPut},
		{Spec: dsl.Spec{
			Verb:    "kv txn",
			Access:  dsl.AccessWrite,
			Summary: "compare and write atomically, as one revision",
			Help: "kv txn if 'CMP'… then 'OP'… else 'OP'… runs the then operations when every compare holds,\n" +
				"else the else operations. CMP is etcdctl's syntax: value(\"k\") = \"v\", version(\"k\") > \"0\",\n" +
				"mod(\"k\") < \"42\", create(\"k\") = \"0\", lease(\"k\") = \"694d…\"; OP is put k v, get k or del k.\n\n" +
				"  kv txn if 'value(\"app/lock\") = \"\"' then 'put app/lock me' else 'get app/lock'",
			Sections: []string{"if", "then", "else"},
		}, Run: s.runTxn},
		{Spec: dsl.Spec{
			Verb:    "kv watch",
			Access:  dsl.AccessRead,
			Summary: "follow changes to a key or prefix",
			Help: "kv watch KEY answers one event per changed key, live; from=SEQ replays history from that\n" +
				"revision first, with no gap. A txn or lease expiry answers all its keys together.\n\n" +
				"  kv watch app/ prefix from=1200 prev",
			Args:    []dsl.Arg{{Name: "KEY", Required: true, Help: "the key, or the prefix with prefix"}},
			Flags:   []dsl.Flag{{Name: "prefix", Help: "every key starting with KEY"}, {Name: "prev", Help: "add each key's previous version (prev_kv)"}},
			Options: []dsl.Option{{Name: "from", Kind: dsl.Int, Help: "replay from revision SEQ"}},
			Stream:  true,
		}, Run: s.runWatch},
		{Spec: dsl.Spec{
			Verb:    "lease grant",
			Access:  dsl.AccessWrite,
			Summary: "grant a lease",
			Help:    "lease grant TTL grants a lease of TTL seconds (or a duration such as 90s) and answers {id, ttl}, id in hex.\n\n  lease grant 60\n  lease grant 2m",
			Args:    []dsl.Arg{{Name: "TTL", Required: true, Help: "seconds, or a duration such as 90s"}},
		}, Run: s.runLeaseGrant},
		{Spec: dsl.Spec{
			Verb:    "lease keepalive",
			Access:  dsl.AccessWrite,
			Summary: "renew a lease once",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "lease id (hex)"}},
		}, Run: s.runLeaseKeepAlive},
		{Spec: dsl.Spec{
			Verb:    "lease list",
			Access:  dsl.AccessRead,
			Summary: "list the live leases",
		}, Run: s.runLeaseList},
		{Spec: dsl.Spec{
			Verb:    "lease revoke",
			Access:  dsl.AccessWrite,
			Summary: "revoke a lease and delete its keys",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "lease id (hex)"}},
		}, Run: s.runLeaseRevoke},
		{Spec: dsl.Spec{
			Verb:    "lease ttl",
			Access:  dsl.AccessRead,
			Summary: "show a lease's remaining time (and keys)",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "lease id (hex)"}},
			Flags:   []dsl.Flag{{Name: "keys", Help: "list the keys attached"}},
		}, Run: s.runLeaseTTL},
	}
}

// atWord turns a store error into one at the word it is about, keeping
// the code.
func atWord(w dsl.Word, err error) error {
	if err == nil {
		return nil
	}
	var pe *engines.PosError
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	code := engines.ErrorCode(err)
	if code == wire.Internal || code == wire.Unavailable || code == wire.ResourceExhausted {
		return err
	}
	return &engines.PosError{Code: code, Pos: w.Pos, Msg: err.Error()}
}

// PrefixEnd returns the end of the range of keys starting with prefix,
// as etcd's clientv3.GetPrefixRangeEnd: "\x00" (every key) when prefix
// is empty or all 0xff.
func PrefixEnd(prefix []byte) []byte {
	if end := journal.PrefixEnd(prefix); end != nil {
		return end
	}
	return []byte{0}
}

// keyRange reads KEY and the prefix flag.
func keyRange(st *dsl.Statement) (key, end []byte) {
	key = []byte(st.Args["KEY"].Text)
	if st.Flags["prefix"] {
		end = PrefixEnd(key)
		if len(key) == 0 {
			key = []byte{0}
		}
	}
	return key, end
}

func buildPut(st *dsl.Statement) (PutRequest, error) {
	p := PutRequest{Key: []byte(st.Args["KEY"].Text), Value: []byte(st.Args["VALUE"].Text), PrevKV: st.Flags["prev"]}
	if len(p.Key) == 0 {
		return p, atWord(st.Args["KEY"], ErrEmptyKey)
	}
	if len(p.Value) > MaxValueSize {
		return p, atWord(st.Args["VALUE"], ErrValueTooLarge)
	}
	if w, ok := st.Opt("lease"); ok {
		id, err := ParseLeaseID(w.Text)
		if err != nil {
			return p, engines.Errorf(wire.InvalidArgument, w, "lease=%s: %v", w.Text, err)
		}
		p.Lease = id
	}
	return p, nil
}

// buildGet returns the range, and the at= word when it named a time.
func buildGet(st *dsl.Statement) (RangeRequest, *dsl.Word, error) {
	key, end := keyRange(st)
	r := RangeRequest{Key: key, End: end, KeysOnly: st.Flags["keys-only"], CountOnly: st.Flags["count-only"]}
	if len(r.Key) == 0 {
		return r, nil, atWord(st.Args["KEY"], ErrEmptyKey)
	}
	if w, ok := st.Opt("limit"); ok {
		n, err := w.Int()
		if err != nil || n < 0 {
			return r, nil, engines.Errorf(wire.InvalidArgument, w, "limit=%s: want a non-negative integer", w.Text)
		}
		r.Limit = n
	}
	if w, ok := st.Opt("at"); ok {
		if n, err := w.Int(); err == nil {
			if n < 1 {
				return r, nil, engines.Errorf(wire.InvalidArgument, w, "at=%s: revisions start at 1", w.Text)
			}
			r.Rev = n
		} else {
			return r, &w, nil
		}
	}
	return r, nil, nil
}

func buildDel(st *dsl.Statement) (DeleteRequest, error) {
	key, end := keyRange(st)
	d := DeleteRequest{Key: key, End: end, PrevKV: st.Flags["prev"]}
	if len(d.Key) == 0 {
		return d, atWord(st.Args["KEY"], ErrEmptyKey)
	}
	return d, nil
}

// putBytesRow adds b under name, or name_b64 when it is not UTF-8.
func putBytesRow(m map[string]any, name string, b []byte) {
	if utf8.Valid(b) {
		m[name] = string(b)
	} else {
		m[name+"_b64"] = base64.StdEncoding.EncodeToString(b)
	}
}

// KVRow is a KeyValue as the DSL answers it: {key, value, create_rev,
// mod_rev, version, lease}, lease in hex, key_b64/value_b64 when not UTF-8.
func KVRow(kv *KeyValue, withValue bool) map[string]any {
	m := map[string]any{"create_rev": kv.CreateRev, "mod_rev": kv.ModRev, "version": kv.Version, "lease": FormatLeaseID(kv.Lease)}
	putBytesRow(m, "key", kv.Key)
	if withValue {
		putBytesRow(m, "value", kv.Value)
	}
	return m
}

func (s *Store) runPut(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	p, err := buildPut(st)
	if err != nil {
		return err
	}
	resp, err := s.Put(ctx, r.Actor(), p)
	if err != nil {
		w := st.Args["KEY"]
		if lw, ok := st.Opt("lease"); ok && errors.Is(err, ErrLeaseNotFound) {
			w = lw
		}
		return atWord(w, err)
	}
	row := map[string]any{"rev": resp.Rev}
	if resp.PrevKV != nil {
		row["prev_kv"] = KVRow(resp.PrevKV, true)
	}
	return r.Row(row)
}

// revAtTime returns the last revision at or before t (0 when none).
func (s *Store) revAtTime(t time.Time) (int64, error) {
	it := s.st.Scan(journal.Query{Until: t.UnixNano(), Reverse: true})
	defer it.Close()
	if it.Next() {
		return it.Raw().Seq, nil
	}
	return 0, it.Err()
}

func (s *Store) runGet(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	req, atTime, err := buildGet(st)
	if err != nil {
		return err
	}
	if atTime != nil {
		now := s.now()
		t, err := atTime.Time(now)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, *atTime, "at=%s: %v", atTime.Text, err)
		}
		if t.After(now) {
			// As at=SEQ past the current revision: the future has no
			// state yet, and answering the current one would be a guess.
			return engines.Errorf(wire.OutOfRange, *atTime, "at=%s is in the future (now %s); nothing has been written there yet",
				atTime.Text, now.UTC().Format(time.RFC3339Nano))
		}
		rev, err := s.revAtTime(t)
		if err != nil {
			return err
		}
		if rev == 0 {
			if req.CountOnly {
				return r.Row(countRow(&req, 0))
			}
			return nil // nothing had happened yet
		}
		req.Rev = rev
	}
	resp, err := s.Range(ctx, req)
	if err != nil {
		if w, ok := st.Opt("at"); ok {
			return atWord(w, err)
		}
		return atWord(st.Args["KEY"], err)
	}
	if req.CountOnly {
		return r.Row(countRow(&req, resp.Count))
	}
	for i := range resp.KVs {
		if err := r.Row(KVRow(&resp.KVs[i], !req.KeysOnly)); err != nil {
			return err
		}
	}
	return nil
}

// countRow is count-only's answer: {count}, and with limit= also more,
// whether that limit would cut the keys (etcd's RangeResponse.more). Key
// rows never carry a marker, as etcdctl get --limit prints none.
func countRow(req *RangeRequest, count int64) map[string]any {
	row := map[string]any{"count": count}
	if req.Limit > 0 {
		row["more"] = count > req.Limit
	}
	return row
}

func (s *Store) runDel(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	d, err := buildDel(st)
	if err != nil {
		return err
	}
	resp, err := s.Delete(ctx, r.Actor(), d)
	if err != nil {
		return atWord(st.Args["KEY"], err)
	}
	row := map[string]any{"rev": resp.Rev, "deleted": resp.Deleted}
	if d.PrevKV {
		prev := make([]any, len(resp.PrevKVs))
		for i := range resp.PrevKVs {
			prev[i] = KVRow(&resp.PrevKVs[i], true)
		}
		row["prev_kvs"] = prev
	}
	return r.Row(row)
}

func (s *Store) runTxn(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	t, err := ParseTxn(st.Sections)
	if err != nil {
		return err
	}
	resp, err := s.Txn(ctx, r.Actor(), t)
	if err != nil {
		return atWord(txnErrWord(st, err), err)
	}
	return r.Row(txnRow(&resp))
}

// txnErrWord returns the word a txn error is about: the compare or
// operation an OpError names (at its first character inside the quotes),
// else the statement.
func txnErrWord(st *dsl.Statement, err error) dsl.Word {
	var oe *OpError
	if errors.As(err, &oe) && oe.Part >= TxnCompare && oe.Part <= TxnFailure {
		words := st.Sections[[...]string{TxnCompare: "if", TxnSuccess: "then", TxnFailure: "else"}[oe.Part]]
		if oe.Index >= 0 && oe.Index < len(words) {
			return dsl.Word{Pos: innerPos(words[oe.Index], 0)}
		}
	}
	return dsl.Word{Pos: st.Pos}
}

func txnRow(t *TxnResponse) map[string]any {
	rs := make([]any, len(t.Responses))
	for i, o := range t.Responses {
		switch {
		case o.Put != nil:
			m := map[string]any{"op": "put", "rev": o.Put.Rev}
			if o.Put.PrevKV != nil {
				m["prev_kv"] = KVRow(o.Put.PrevKV, true)
			}
			rs[i] = m
		case o.Delete != nil:
			rs[i] = map[string]any{"op": "del", "rev": o.Delete.Rev, "deleted": o.Delete.Deleted}
		case o.Range != nil:
			kvs := make([]any, len(o.Range.KVs))
			for j := range o.Range.KVs {
				kvs[j] = KVRow(&o.Range.KVs[j], true)
			}
			rs[i] = map[string]any{"op": "get", "count": o.Range.Count, "kvs": kvs}
		case o.Txn != nil:
			m := txnRow(o.Txn)
			m["op"] = "txn"
			rs[i] = m
		}
	}
	return map[string]any{"succeeded": t.Succeeded, "rev": t.Rev, "responses": rs}
}

// WatchRow is a watch Event as the DSL answers it: the KV row plus type
// ("PUT" or "DELETE") and prev_kv when asked.
func WatchRow(e *Event) map[string]any {
	m := KVRow(&e.KV, e.Type == Put)
	m["type"] = "PUT"
	if e.Type == Delete {
		m["type"] = "DELETE"
	}
	if e.PrevKV != nil {
		m["prev_kv"] = KVRow(e.PrevKV, true)
	}
	return m
}

func (s *Store) runWatch(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	key, end := keyRange(st)
	if len(key) == 0 {
		return atWord(st.Args["KEY"], ErrEmptyKey)
	}
	var from int64
	if w, ok := st.Opt("from"); ok {
		n, err := w.Int()
		if err != nil || n < 1 {
			return engines.Errorf(wire.InvalidArgument, w, "from=%s: want a revision >= 1", w.Text)
		}
		from = n
	}
	err := s.Watch(ctx, key, end, from, st.Flags["prev"], func(rev int64, evs []Event) error {
		for i := range evs {
			if err := r.Event(WatchRow(&evs[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil // canceled: the watch ends normally
	}
	return err
}

func (s *Store) runHistory(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	key := []byte(st.Args["KEY"].Text)
	limit := 0
	if w, ok := st.Opt("limit"); ok {
		n, err := w.Int()
		if err != nil || n < 0 {
			return engines.Errorf(wire.InvalidArgument, w, "limit=%s: want a non-negative integer", w.Text)
		}
		limit = int(n)
	}
	if len(key) == 0 {
		return atWord(st.Args["KEY"], ErrEmptyKey)
	}
	if s.st == nil {
		return wire.Errorf(wire.Unavailable, "kv store not started")
	}
	// One snapshot for the versions and their events, so every version
	// read finds its event; time and actor are looked up per row emitted.
	sn := s.st.Snapshot()
	defer sn.Close()
	err := history(ctx, snapReader{sn}, sn.Seq(), key, limit, st.Flags["reverse"], func(v *Version) error {
		row := KVRow(&v.KeyValue, !v.Deleted)
		row["type"] = "PUT"
		if v.Deleted {
			row["type"] = "DELETE"
		}
		it := sn.Scan(journal.Query{From: v.ModRev, To: v.ModRev})
		if it.Next() {
			if ev, err := it.Raw().Decode(); err == nil {
				row["time"] = time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano)
				row["actor"] = ev.Actor
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
		return r.Row(row)
	})
	if err != nil {
		return atWord(st.Args["KEY"], err)
	}
	return nil
}

func leaseArg(st *dsl.Statement) (int64, dsl.Word, error) {
	w := st.Args["ID"]
	id, err := ParseLeaseID(w.Text)
	if err != nil {
		return 0, w, engines.Errorf(wire.InvalidArgument, w, "%v", err)
	}
	return id, w, nil
}

func (s *Store) runLeaseGrant(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["TTL"]
	d, err := w.Duration()
	if err != nil || d < time.Second {
		return engines.Errorf(wire.InvalidArgument, w, "TTL %q: want seconds (>= 1) or a duration such as 90s", w.Text)
	}
	l, err := s.LeaseGrant(ctx, r.Actor(), 0, ceilSeconds(d))
	if err != nil {
		return atWord(w, err)
	}
	return r.Row(map[string]any{"id": FormatLeaseID(l.ID), "ttl": l.TTL})
}

func (s *Store) runLeaseRevoke(ctx context.Context, r engines.Request) error {
	id, w, err := leaseArg(r.Statement())
	if err != nil {
		return err
	}
	rev, err := s.LeaseRevoke(ctx, r.Actor(), id)
	if err != nil {
		return atWord(w, err)
	}
	return r.Row(map[string]any{"id": FormatLeaseID(id), "rev": rev})
}

func (s *Store) runLeaseKeepAlive(ctx context.Context, r engines.Request) error {
	id, w, err := leaseArg(r.Statement())
	if err != nil {
		return err
	}
	l, err := s.LeaseKeepAlive(ctx, r.Actor(), id)
	if err != nil {
		return atWord(w, err)
	}
	return r.Row(map[string]any{"id": FormatLeaseID(id), "ttl": l.TTL})
}

func (s *Store) runLeaseList(ctx context.Context, r engines.Request) error {
	ls, err := s.Leases(ctx)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if err := r.Row(map[string]any{"id": FormatLeaseID(l.ID), "ttl": l.TTL, "granted_ttl": l.GrantedTTL}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) runLeaseTTL(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	id, w, err := leaseArg(st)
	if err != nil {
		return err
	}
	l, err := s.LeaseTimeToLive(ctx, id, st.Flags["keys"])
	if err != nil {
		return atWord(w, fmt.Errorf("lease %s has expired or was never granted: %w", FormatLeaseID(id), ErrLeaseNotFound))
	}
	row := map[string]any{"id": FormatLeaseID(id), "ttl": l.TTL, "granted_ttl": l.GrantedTTL}
	if st.Flags["keys"] {
		keys := make([]string, len(l.Keys))
		for i, k := range l.Keys {
			if utf8.Valid(k) {
				keys[i] = string(k)
			} else {
				keys[i] = "b64:" + base64.StdEncoding.EncodeToString(k)
			}
		}
		row["keys"] = keys
	}
	return r.Row(row)
}
