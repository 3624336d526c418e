package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/hashicorp/consul/api"

	"github.com/cairnhq/cairn/journal"
)

func kvPair(e *kvEntry, withValue bool) *api.KVPair {
	p := &api.KVPair{Key: e.Key, CreateIndex: uint64(e.CreateIndex), ModifyIndex: uint64(e.ModifyIndex),
		LockIndex: uint64(e.LockIndex), Flags: e.Flags, Session: e.Session}
	if withValue {
		p.Value = e.Value
	}
	return p
}

// kvGet is GET /v1/kv/KEY: one key, ?recurse (every key under it),
// ?keys (their names, cut at ?separator), ?raw (the value alone).
func (m *Module) kvGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	q := r.URL.Query()
	_, recurse := q["recurse"]
	_, keys := q["keys"]
	_, raw := q["raw"]
	sep := q.Get("separator")
	m.blocking(w, r, func() (int64, func()) {
		if keys {
			names := kvKeys(m.mir.kvList(key), key, sep)
			return m.mir.index(tabKV), func() {
				if len(names) == 0 {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				writeJSON(w, names)
			}
		}
		if recurse {
			es := m.mir.kvList(key)
			out := make([]*api.KVPair, len(es))
			for i, e := range es {
				out[i] = kvPair(e, true)
			}
			return m.mir.index(tabKV), func() {
				if len(out) == 0 {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				writeJSON(w, out)
			}
		}
		e, ok := m.mir.kv[key]
		if !ok {
			return m.mir.index(tabKV), func() { w.WriteHeader(http.StatusNotFound) }
		}
		p := kvPair(e, true)
		return e.ModifyIndex, func() {
			if raw {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(p.Value)
				return
			}
			writeJSON(w, []*api.KVPair{p})
		}
	})
}

// kvPut is PUT /v1/kv/KEY: set, ?cas=INDEX, ?flags=N, ?acquire=SESSION,
// ?release=SESSION. It answers true or false.
func (m *Module) kvPut(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		http.Error(w, "Missing key name", http.StatusBadRequest)
		return
	}
	actor, err := m.allowWrite(r, "consul kv put", map[string]string{"KEY": key})
	if err != nil {
		m.httpError(w, err)
		return
	}
	wr := kvWrite{Verb: "set", Key: key}
	if r.URL.RawQuery != "" { // a plain PUT has none: no map to parse
		q := r.URL.Query()
		if s := q.Get("flags"); s != "" {
			if wr.Flags, err = strconv.ParseUint(s, 10, 64); err != nil {
				http.Error(w, fmt.Sprintf("Invalid flags: %v", err), http.StatusBadRequest)
				return
			}
		}
		if s, ok := q["cas"]; ok {
			if wr.Index, err = strconv.ParseUint(s[0], 10, 64); err != nil {
				http.Error(w, fmt.Sprintf("Invalid cas index: %v", err), http.StatusBadRequest)
				return
			}
			wr.Verb = "cas"
		}
		if s, ok := q["acquire"]; ok {
			wr.Verb, wr.Session = "lock", s[0]
		}
		if s, ok := q["release"]; ok {
			wr.Verb, wr.Session = "unlock", s[0]
		}
	}
	if r.ContentLength > maxKVValue {
		http.Error(w, fmt.Sprintf("Request body(%d bytes) too large, max size: %d bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.", r.ContentLength, maxKVValue), http.StatusRequestEntityTooLarge)
		return
	}
	body, err := readValue(w, r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, fmt.Sprintf("Request body too large, max size: %d bytes.", maxKVValue), http.StatusRequestEntityTooLarge)
		return
	} else if err != nil {
		http.Error(w, "read the value: "+err.Error(), http.StatusBadRequest)
		return
	}
	wr.Value = body
	ok, err := m.kvWrite(r.Context(), actor, wr)
	if err != nil {
		m.httpError(w, err)
		return
	}
	writeBool(w, ok)
}

// readValue reads a PUT's value: a body of known length (as consul/api
// sends) into a slice of exactly its size, one of unknown length (chunked)
// up to maxKVValue. An empty body is an empty value, not a missing one.
func readValue(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, maxKVValue))
	}
	// net/http's body stops at Content-Length (at most maxKVValue here).
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// kvDelete is DELETE /v1/kv/KEY: one key, ?recurse, ?cas=INDEX.
func (m *Module) kvDelete(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	actor, err := m.allowWrite(r, "consul kv delete", map[string]string{"KEY": key})
	if err != nil {
		m.httpError(w, err)
		return
	}
	q := r.URL.Query()
	wr := kvWrite{Verb: "delete", Key: key}
	if _, ok := q["recurse"]; ok {
		wr.Verb = "delete-tree"
	} else if key == "" {
		http.Error(w, "Missing key name", http.StatusBadRequest)
		return
	}
	if s, ok := q["cas"]; ok {
		if wr.Index, err = strconv.ParseUint(s[0], 10, 64); err != nil {
			http.Error(w, fmt.Sprintf("Invalid cas index: %v", err), http.StatusBadRequest)
			return
		}
		wr.Verb = "delete-cas"
	}
	ok, err := m.kvWrite(r.Context(), actor, wr)
	if err != nil {
		m.httpError(w, err)
		return
	}
	writeBool(w, ok)
}

// kvTx begins a KV transaction at seq in the commit pipeline: keys in a
// lock delay stay locked, and a key's committed state is read from the
// mirror where it can be.
func (m *Module) kvTx(rd reader, seq int64) *kvTx {
	t := newKVTx(rd, seq, m.lockDelayed)
	t.current = m.mir.kvCurrent
	return t
}

// kvWrite decides one KV write in the commit pipeline.
func (m *Module) kvWrite(ctx context.Context, actor journal.Actor, wr kvWrite) (bool, error) {
	reply, _, err := m.propose(ctx, actor, func(rd reader, seq int64) (*change, error) {
		t := m.kvTx(rd, seq)
		ok, err := t.apply(wr, m.sessionExists(rd))
		if err != nil {
			return nil, err
		}
		ops := t.ops()
		if !ok || len(ops) == 0 {
			return &change{Reply: ok}, nil
		}
		kind := KindKVSet
		data := map[string]any{"op": wr.Verb}
		switch wr.Verb {
		case "delete", "delete-cas", "delete-tree":
			kind = KindKVDelete
			if wr.Verb == "delete-tree" {
				data["prefix"] = wr.Key
				data["keys"] = int64(len(ops))
			}
		default:
			if wr.Session != "" {
				data["session"] = wr.Session
			}
		}
		return &change{Kind: kind, Subject: kvSubject(wr.Key), Ops: ops, Data: data, Reply: ok}, nil
	})
	if err != nil {
		return false, err
	}
	ok, _ := reply.(bool)
	return ok, nil
}

// kvSubject is the subject of a Consul KV key's events.
func kvSubject(key string) string { return "consul_kv/" + key }

// sessionExists reads whether a session exists, for a lock.
func (m *Module) sessionExists(rd reader) func(string) (bool, error) {
	return func(id string) (bool, error) {
		var s session
		return rd.get(tabSession, id, &s)
	}
}

// txn is PUT /v1/txn: KV operations applied all or none, as one event.
func (m *Module) txn(w http.ResponseWriter, r *http.Request) {
	var ops api.TxnOps
	if err := decode(w, r, &ops); err != nil {
		m.httpError(w, err)
		return
	}
	if len(ops) > maxTxnOps {
		http.Error(w, fmt.Sprintf("Transaction contains too many operations (%d > %d)", len(ops), maxTxnOps), http.StatusRequestEntityTooLarge)
		return
	}
	writes := false
	for i, o := range ops {
		if o == nil || o.KV == nil {
			http.Error(w, fmt.Sprintf("Operation %d: only KV operations are implemented by cairn's /v1/txn", i), http.StatusBadRequest)
			return
		}
		switch o.KV.Verb {
		case api.KVGet, api.KVGetTree, api.KVCheckIndex, api.KVCheckSession, api.KVCheckNotExists, api.KVGetOrEmpty:
		default:
			writes = true
		}
	}
	actor := actorOf(r)
	if writes {
		var err error
		if actor, err = m.allowWrite(r, "consul txn", nil); err != nil {
			m.httpError(w, err)
			return
		}
	}
	type txnReply struct {
		resp api.TxnResponse
	}
	reply, seq, err := m.propose(r.Context(), actor, func(rd reader, seq int64) (*change, error) {
		t := m.kvTx(rd, seq)
		var res api.TxnResponse
		fail := func(i int, what string) (*change, error) {
			return &change{Reply: txnReply{api.TxnResponse{Errors: api.TxnErrors{{OpIndex: i, What: what}}}}}, nil
		}
		for i, o := range ops {
			kv := o.KV
			switch kv.Verb {
			case api.KVGet, api.KVGetOrEmpty, api.KVCheckIndex, api.KVCheckSession, api.KVCheckNotExists:
				e, err := t.get(kv.Key)
				if err != nil {
					return nil, err
				}
				switch {
				case kv.Verb == api.KVCheckNotExists:
					if e != nil {
						return fail(i, fmt.Sprintf("key %q exists", kv.Key))
					}
					continue
				case e == nil && kv.Verb == api.KVGetOrEmpty:
					res.Results = append(res.Results, &api.TxnResult{KV: &api.KVPair{Key: kv.Key}})
					continue
				case e == nil:
					return fail(i, fmt.Sprintf("key %q doesn't exist", kv.Key))
				case kv.Verb == api.KVCheckIndex && uint64(e.ModifyIndex) != kv.Index:
					return fail(i, fmt.Sprintf("current modify index %d for key %q doesn't match %d", e.ModifyIndex, kv.Key, kv.Index))
				case kv.Verb == api.KVCheckSession && e.Session != kv.Session:
					return fail(i, fmt.Sprintf("key %q is not currently locked by session %q", kv.Key, kv.Session))
				}
				res.Results = append(res.Results, &api.TxnResult{KV: kvPair(e, kv.Verb == api.KVGet || kv.Verb == api.KVGetOrEmpty)})
			case api.KVGetTree:
				es, err := t.list(kv.Key)
				if err != nil {
					return nil, err
				}
				for _, e := range es {
					res.Results = append(res.Results, &api.TxnResult{KV: kvPair(e, true)})
				}
			default:
				if len(kv.Value) > maxKVValue {
					return fail(i, fmt.Sprintf("value for key %q is too large (%d > %d bytes)", kv.Key, len(kv.Value), maxKVValue))
				}
				ok, err := t.apply(kvWrite{Verb: string(kv.Verb), Key: kv.Key, Value: kv.Value, Flags: kv.Flags, Index: kv.Index, Session: kv.Session}, m.sessionExists(rd))
				var kve *errKV
				if errors.As(err, &kve) {
					return fail(i, kve.msg)
				} else if err != nil {
					return nil, err
				}
				if !ok {
					return fail(i, fmt.Sprintf("failed to %s key %q", kv.Verb, kv.Key))
				}
				if e, _ := t.get(kv.Key); e != nil {
					res.Results = append(res.Results, &api.TxnResult{KV: kvPair(e, false)})
				}
			}
		}
		kops := t.ops()
		if len(kops) == 0 {
			return &change{Reply: txnReply{res}}, nil
		}
		subject := kvSubject(kops[0].ID)
		return &change{Kind: KindKVTxn, Subject: subject, Ops: kops, Data: map[string]any{"ops_asked": int64(len(ops))}, Reply: txnReply{res}}, nil
	})
	if err != nil {
		m.httpError(w, err)
		return
	}
	tr, _ := reply.(txnReply)
	queryMeta(w, seq)
	if len(tr.resp.Errors) > 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		writeJSON(w, tr.resp)
		return
	}
	writeJSON(w, tr.resp)
}
