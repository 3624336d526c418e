package discovery

import (
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
	if e.mir != nil {
		// Before the writes: a fold that fails half-way still counts.
		e.mir.noteWritten(ev.Seq, ops)
	}
	touched := map[string]bool{}
	for _, o := range ops {
		key := []byte(o.Table + "/" + o.ID)
		touched[o.Table] = true
		if o.Rec == nil {
			if err := t.Delete(key); err != nil {
				return err
			}
			continue
		}
		b, err := storedRecord(o.Table, o.Rec)
		if err != nil {
			return fmt.Errorf("discovery: fold %s seq %d: %s/%s: %w", ev.Kind, ev.Seq, o.Table, o.ID, err)
		}
		if err := t.Set(key, b); err != nil {
			return err
		}
	}
	for table := range touched {
		if err := t.Set([]byte("idx/"+table), strconv.AppendInt(nil, ev.Seq, 10)); err != nil {
			return err
		}
	}
	if e.mir != nil {
		e.mir.offer(ev.Seq, ops)
	}
	return nil
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
	j := kvJSON{Key: e.Key, Session: e.Session, LockIndex: e.LockIndex, CreateIndex: e.CreateIndex, ModifyIndex: e.ModifyIndex}
	if e.Flags != 0 {
		j.Flags = strconv.FormatUint(e.Flags, 10)
	}
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
