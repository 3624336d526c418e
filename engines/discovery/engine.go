package discovery

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name, and its projection's.
const Name = "discovery"

// Event kinds (docs/events.md).
const (
	KindServiceRegister   = "discovery.service.register"
	KindServiceDeregister = "discovery.service.deregister"
	KindCheckRegister     = "discovery.check.register"
	KindCheckDeregister   = "discovery.check.deregister"
	KindCheck             = "discovery.check"
	KindSessionCreate     = "discovery.session.create"
	KindSessionDestroy    = "discovery.session.destroy"
	KindKVSet             = "consul_kv.set"
	KindKVDelete          = "consul_kv.delete"
	KindKVTxn             = "consul_kv.txn"
)

var allKinds = []string{
	KindKVDelete, KindKVSet, KindKVTxn,
	KindCheck, KindCheckDeregister, KindCheckRegister,
	KindServiceDeregister, KindServiceRegister,
	KindSessionCreate, KindSessionDestroy,
}

// ours reports whether kind is one of this engine's.
func ours(kind string) bool {
	return strings.HasPrefix(kind, "discovery.") || strings.HasPrefix(kind, "consul_kv.")
}

// reader reads the committed records (through the batch being built).
type reader interface {
	get(table, id string, v any) (bool, error)
	each(table, prefix string, fn func(id string, b []byte) error) error
}

// change is what a proposal decides: one event.
type change struct {
	Kind    string
	Subject string
	Ops     []op
	Data    map[string]any // more data beside "ops"
	Reply   any
}

// proposal is a request to the engine: fn decides against the committed
// state; seq is the seq the event will have (its records' ModifyIndex).
type proposal struct {
	actor journal.Actor
	fn    func(r reader, seq int64) (*change, error)
}

// engine is the journal engine: Decide runs a proposal against the
// projection, Fold writes an event's records into it and hands them to
// mir (when set), so that the mirror need not decode the event again.
type engine struct{ mir *mirror }

var (
	_ journal.Engine     = engine{}
	_ journal.KindFilter = engine{}
	_ journal.RawFolder  = engine{}
)

func (engine) Name() string { return Name }

func (engine) FoldsKind(kind string) bool { return ours(kind) }

// noChange is the reply of a proposal that decided nothing needs writing
// (a failed CAS): Decide returns no event.
type noChange struct{ reply any }

func (engine) Decide(v *journal.View, req any) (journal.Decision, error) {
	p, ok := req.(proposal)
	if !ok {
		return journal.Decision{}, fmt.Errorf("discovery: unexpected request %T", req)
	}
	c, err := p.fn(viewReader{v}, v.LastSeq()+1)
	if err != nil {
		return journal.Decision{}, err
	}
	if c == nil || c.Kind == "" {
		var reply any
		if c != nil {
			reply = c.Reply
		}
		return journal.Decision{Reply: noChange{reply}}, nil
	}
	data := make(map[string]any, len(c.Data)+1)
	for k, v := range c.Data {
		data[k] = v
	}
	data["ops"] = opsData(c.Ops)
	return journal.Decision{
		Bodies: []*journal.Body{{Kind: c.Kind, Subject: c.Subject, Actor: p.actor, Data: data}},
		Reply:  c.Reply,
	}, nil
}

func (e engine) Fold(t *journal.Txn, ev *journal.Event) error {
	if !ours(ev.Kind) {
		return nil
	}
	ops, err := opsOf(ev.Data)
	if err != nil {
		return fmt.Errorf("discovery: fold %s seq %d: %w", ev.Kind, ev.Seq, err)
	}
	return e.foldOps(t, ev.Seq, ev.Kind, ops, nil)
}

// FoldRaw folds a KV write from its stored bytes, decoding only data.ops
// (each record straight into its struct) rather than the whole event; any
// other event, or one whose ops are anything but well-formed, goes through
// Fold, so the two fold alike (TestFoldRawAsFold).
func (e engine) FoldRaw(t *journal.Txn, raw *journal.Raw) error {
	kind, err := raw.Kind()
	if err != nil {
		return err
	}
	if !ours(kind) {
		return nil
	}
	ops, stored, ok := rawOps(kind, raw.Body())
	if !ok {
		ev, err := raw.Decode()
		if err != nil {
			return err
		}
		return e.Fold(t, ev)
	}
	return e.foldOps(t, raw.Seq, kind, ops, stored)
}

// foldOps writes an event's ops into the projection; stored, when set,
// holds each KV record's stored bytes already.
func (e engine) foldOps(t *journal.Txn, seq int64, kind string, ops []op, stored [][]byte) error {
	if e.mir != nil {
		// Before the writes: a fold that fails half-way still counts.
		e.mir.noteWritten(seq, ops)
	}
	touched := map[string]bool{}
	for i, o := range ops {
		key := []byte(o.Table + "/" + o.ID)
		touched[o.Table] = true
		if o.Rec == nil && o.kv == nil {
			if err := t.Delete(key); err != nil {
				return err
			}
			continue
		}
		var b []byte
		if stored != nil && stored[i] != nil {
			b = stored[i]
		} else {
			var err error
			if b, err = storedRecord(o.Table, o.Rec); err != nil {
				return fmt.Errorf("discovery: fold %s seq %d: %s/%s: %w", kind, seq, o.Table, o.ID, err)
			}
		}
		if err := t.Set(key, b); err != nil {
			return err
		}
	}
	for table := range touched {
		if err := t.Set([]byte("idx/"+table), strconv.AppendInt(nil, seq, 10)); err != nil {
			return err
		}
	}
	if e.mir != nil {
		e.mir.offer(seq, ops)
	}
	return nil
}

// kvOpsWire is the part of a consul_kv event FoldRaw decodes: its ops,
// each record straight into a kvWire.
type kvOpsWire struct {
	Data struct {
		Ops []struct {
			T   string  `cbor:"t"`
			ID  string  `cbor:"id"`
			Rec *kvWire `cbor:"rec"`
		} `cbor:"ops"`
	} `cbor:"data"`
}

// kvWire is a KV record of an event's ops, each field as kvFromRec reads
// it (pointers: present or not).
type kvWire struct {
	Key         string  `cbor:"key"`
	Value       *string `cbor:"value"`
	ValueB64    *string `cbor:"value_b64"`
	Flags       *string `cbor:"flags"`
	Session     string  `cbor:"session"`
	LockIndex   int64   `cbor:"lock_index"`
	CreateIndex int64   `cbor:"create_index"`
	ModifyIndex int64   `cbor:"modify_index"`
}

// rawOps decodes the ops of a consul_kv event's body (the KV writes, the
// hot path; the other kinds are Fold's): each record into its entry
// (op.kv) and its stored bytes, no record a removal. ok is false for any
// other kind or anything not well-formed, which Fold then decides as it
// always has.
func rawOps(kind string, body []byte) (ops []op, stored [][]byte, ok bool) {
	if !strings.HasPrefix(kind, "consul_kv.") {
		return nil, nil, false
	}
	var w kvOpsWire
	if err := journal.DecodeFields(body, &w); err != nil {
		return nil, nil, false
	}
	ops = make([]op, len(w.Data.Ops))
	stored = make([][]byte, len(w.Data.Ops))
	for i, o := range w.Data.Ops {
		if o.T != tabKV {
			return nil, nil, false
		}
		ops[i] = op{Table: o.T, ID: o.ID}
		kw := o.Rec
		if kw == nil {
			continue // a removal
		}
		e := &kvEntry{Key: kw.Key, Session: kw.Session, LockIndex: kw.LockIndex, CreateIndex: kw.CreateIndex, ModifyIndex: kw.ModifyIndex}
		var err error
		if kw.Flags != nil {
			if e.Flags, err = strconv.ParseUint(*kw.Flags, 10, 64); err != nil {
				return nil, nil, false
			}
		}
		j := kvJSONOf(e)
		switch {
		case kw.Value != nil:
			e.Value, j.Value = []byte(*kw.Value), kw.Value
		case kw.ValueB64 != nil:
			if e.Value, err = base64.StdEncoding.DecodeString(*kw.ValueB64); err != nil {
				return nil, nil, false
			}
			j.ValueB64 = *kw.ValueB64
		}
		if stored[i], err = json.Marshal(&j); err != nil {
			return nil, nil, false
		}
		ops[i].kv = e
	}
	return ops, stored, true
}

// storedRecord is a record as the projection keeps it: JSON, a KV entry's
// written from its struct (the hot path) rather than from the map.
func storedRecord(table string, rec map[string]any) ([]byte, error) {
	if table != tabKV {
		return recordBytes(rec)
	}
	e, err := kvFromRec(rec)
	if err != nil {
		return nil, err
	}
	j := kvJSONOf(e)
	if v, ok := rec["value"].(string); ok {
		j.Value = &v
	} else if v, ok := rec["value_b64"].(string); ok {
		j.ValueB64 = v
	}
	return json.Marshal(&j)
}

// viewReader reads the projection through a View.
type viewReader struct{ v *journal.View }

func (r viewReader) get(table, id string, v any) (bool, error) {
	b, ok, err := r.v.Get([]byte(table + "/" + id))
	if err != nil || !ok {
		return false, err
	}
	if err := parseRecord(b, v); err != nil {
		return false, fmt.Errorf("discovery: read %s/%s: %w", table, id, err)
	}
	return true, nil
}

func (r viewReader) each(table, prefix string, fn func(id string, b []byte) error) error {
	lo := []byte(table + "/" + prefix)
	hi := journal.PrefixEnd(lo)
	if len(prefix) == 0 {
		hi = journal.PrefixEnd([]byte(table + "/"))
	}
	return r.v.Iter(lo, hi, func(k, v []byte) error {
		return fn(string(k[len(table)+1:]), v)
	})
}
