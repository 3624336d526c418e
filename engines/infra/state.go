package infra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name: its verbs are "infra …", its projection lives
// under p/infra/ of the audit stream.
const Name = "infra"

// The events of the infra engine, all on the audit stream.
const (
	KindPlan    = "infra.plan"    // a plan was made (its seq is the plan id)
	KindIntent  = "infra.intent"  // an apply is about to touch reality
	KindCreate  = "infra.create"  // an object was created
	KindUpdate  = "infra.update"  // an object was changed in place
	KindDelete  = "infra.delete"  // an object was deleted
	KindImport  = "infra.import"  // an existing object was put under management
	KindRefresh = "infra.refresh" // state was updated from reality
	KindForget  = "infra.forget"  // an object left state without being deleted
	KindMove    = "infra.move"    // an object's address changed (count added or removed)
	KindDrift   = "infra.drift"   // reality moved away from state
	KindApply   = "infra.apply"   // an apply ended (outputs, counts, error)
)

// ResourceState is one managed object as state records it. Sensitive
// attributes hold a digest ("sha256:…") in Attrs, never their value.
type ResourceState struct {
	Addr      string         `json:"addr"`
	Type      string         `json:"type"`
	ID        string         `json:"id"`
	Attrs     map[string]any `json:"attrs"`
	Sensitive []string       `json:"sensitive,omitempty"`
	Config    []string       `json:"config,omitempty"` // attributes the configuration sets
	Deps      []string       `json:"deps,omitempty"`   // resources it referred to (TYPE.NAME)
}

func (rs *ResourceState) sensitive(attr string) bool {
	for _, s := range rs.Sensitive {
		if s == attr {
			return true
		}
	}
	return false
}

// toMap is the state as event data (CBOR-encodable plain values).
func (rs *ResourceState) toMap() map[string]any {
	if rs == nil {
		return nil
	}
	attrs := make(map[string]any, len(rs.Attrs))
	for k, v := range rs.Attrs {
		attrs[k] = v
	}
	m := map[string]any{"addr": rs.Addr, "type": rs.Type, "id": rs.ID, "attrs": attrs}
	if len(rs.Sensitive) > 0 {
		m["sensitive"] = append([]string(nil), rs.Sensitive...)
	}
	if len(rs.Config) > 0 {
		m["config"] = append([]string(nil), rs.Config...)
	}
	if len(rs.Deps) > 0 {
		m["deps"] = append([]string(nil), rs.Deps...)
	}
	return m
}

// stateFromData decodes what toMap wrote (after a JSON or CBOR trip),
// normalising attribute types by the resource type's schema.
func stateFromData(x any) (*ResourceState, error) {
	if x == nil {
		return nil, nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}

func decodeState(b []byte) (*ResourceState, error) {
	var rs ResourceState
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&rs); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if rt := resourceType(rs.Type); rt != nil {
		sch := rt.Schema()
		for k, v := range rs.Attrs {
			if a := sch.Attributes[k]; a != nil && !rs.sensitive(k) {
				rs.Attrs[k] = normalize(v, a.Type)
			}
		}
	}
	if rs.Attrs == nil {
		rs.Attrs = map[string]any{}
	}
	return &rs, nil
}

// Drift is one open drift: an attribute of a managed object whose reality
// is no longer what state says.
type Drift struct {
	Workspace string `json:"workspace"`
	Addr      string `json:"addr"`
	Attribute string `json:"attribute"`
	Expected  any    `json:"expected"`
	Actual    any    `json:"actual"`
	Seq       int64  `json:"seq"`
	Time      string `json:"time,omitempty"`
}

// workspaceMeta is what the projection keeps per workspace.
type workspaceMeta struct {
	Seq     int64          `json:"seq"` // last event that moved state or reality
	Dir     string         `json:"dir,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
}

// Projection keys, relative to p/infra/.
func resKey(ws, addr string) []byte { return []byte("r/" + ws + "\x00" + addr) }
func resPrefix(ws string) []byte    { return []byte("r/" + ws + "\x00") }
func wsKey(ws string) []byte        { return []byte("w/" + ws) }
func driftPrefix(ws string) []byte  { return []byte("d/" + ws + "\x00") }
func driftAddrPrefix(ws, addr string) []byte {
	return []byte("d/" + ws + "\x00" + addr + "\x00")
}

// subject is the journal subject of an event about addr in ws.
func subject(ws, addr string) string {
	if addr == "" {
		return ws
	}
	return ws + "/" + addr
}

// commitReq is what the infra journal engine is asked to commit: bodies,
// appended only if the workspace's seq still is expectSeq (when checked).
type commitReq struct {
	ws        string
	check     bool
	expectSeq int64
	bodies    []*journal.Body
}

type engine struct{}

func (engine) Name() string { return Name }

func (engine) FoldsKind(kind string) bool { return strings.HasPrefix(kind, "infra.") }

func (engine) Decide(v *journal.View, req any) (journal.Decision, error) {
	r, ok := req.(*commitReq)
	if !ok {
		return journal.Decision{}, fmt.Errorf("infra: unexpected request %T", req)
	}
	if r.check {
		meta, err := readMeta(v.Get, r.ws)
		if err != nil {
			return journal.Decision{}, err
		}
		if meta.Seq != r.expectSeq {
			return journal.Decision{}, wire.Errorf(wire.FailedPrecondition,
				"the saved plan is stale: state or reality of workspace %q moved since it was made (seq %d, now %d); run infra plan again", r.ws, r.expectSeq, meta.Seq)
		}
	}
	return journal.Decision{Bodies: r.bodies}, nil
}

func readMeta(get func([]byte) ([]byte, bool, error), ws string) (workspaceMeta, error) {
	var m workspaceMeta
	b, ok, err := get(wsKey(ws))
	if err != nil || !ok {
		return m, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return m, d.Decode(&m)
}

func (engine) Fold(t *journal.Txn, ev *journal.Event) error {
	ws, _ := ev.Data["workspace"].(string)
	if ws == "" {
		return nil
	}
	addr, _ := ev.Data["addr"].(string)
	meta, err := readMeta(t.Get, ws)
	if err != nil {
		return err
	}
	touch := func() error {
		meta.Seq = ev.Seq
		b, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		return t.Set(wsKey(ws), b)
	}
	clearDrift := func() error {
		p := driftAddrPrefix(ws, addr)
		return t.DeleteRange(p, journal.PrefixEnd(p))
	}
	switch ev.Kind {
	case KindCreate, KindUpdate, KindImport, KindRefresh:
		b, err := json.Marshal(ev.Data["after"])
		if err != nil {
			return err
		}
		if err := t.Set(resKey(ws, addr), b); err != nil {
			return err
		}
		if err := clearDrift(); err != nil {
			return err
		}
		if dir, _ := ev.Data["dir"].(string); dir != "" {
			meta.Dir = dir
		}
		return touch()
	case KindDelete, KindForget:
		if deposed, _ := ev.Data["deposed"].(bool); deposed {
			return touch() // the old object of a create_before_destroy: state is the new one
		}
		if err := t.Delete(resKey(ws, addr)); err != nil {
			return err
		}
		if err := clearDrift(); err != nil {
			return err
		}
		return touch()
	case KindMove:
		from, _ := ev.Data["from"].(string)
		b, err := json.Marshal(ev.Data["after"])
		if err != nil {
			return err
		}
		if err := t.Delete(resKey(ws, from)); err != nil {
			return err
		}
		p := driftAddrPrefix(ws, from)
		if err := t.DeleteRange(p, journal.PrefixEnd(p)); err != nil {
			return err
		}
		if err := t.Set(resKey(ws, addr), b); err != nil {
			return err
		}
		return touch()
	case KindDrift:
		attr, _ := ev.Data["attribute"].(string)
		d := Drift{Workspace: ws, Addr: addr, Attribute: attr, Expected: ev.Data["expected"], Actual: ev.Data["actual"], Seq: ev.Seq}
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := t.Set(append(driftAddrPrefix(ws, addr), attr...), b); err != nil {
			return err
		}
		return touch()
	case KindApply:
		if o, ok := ev.Data["outputs"].(map[string]any); ok {
			meta.Outputs = o
		}
		if dir, _ := ev.Data["dir"].(string); dir != "" {
			meta.Dir = dir
		}
		b, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		return t.Set(wsKey(ws), b) // outputs alone do not stale a plan
	}
	return nil
}

// snapshotState reads one workspace's state from a snapshot.
type stateReader struct {
	sn *journal.Snapshot
}

func (r stateReader) get(k []byte) ([]byte, bool, error) { return r.sn.Get(Name, k) }

func (r stateReader) meta(ws string) (workspaceMeta, error) { return readMeta(r.get, ws) }

func (r stateReader) resources(ws string) (map[string]*ResourceState, error) {
	out := map[string]*ResourceState{}
	p := resPrefix(ws)
	err := r.sn.Iter(Name, p, journal.PrefixEnd(p), func(k, v []byte) error {
		rs, err := decodeState(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		out[rs.Addr] = rs
		return nil
	})
	return out, err
}

func (r stateReader) drift(ws string) ([]Drift, error) {
	var out []Drift
	lo, hi := []byte("d/"), []byte("d0")
	if ws != "" {
		p := driftPrefix(ws)
		lo, hi = p, journal.PrefixEnd(p)
	}
	err := r.sn.Iter(Name, lo, hi, func(k, v []byte) error {
		var d Drift
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// workspaces lists the workspaces that have state or history.
func (r stateReader) workspaces() ([]string, error) {
	var out []string
	err := r.sn.Iter(Name, []byte("w/"), []byte("w0"), func(k, v []byte) error {
		out = append(out, string(k[2:]))
		return nil
	})
	sort.Strings(out)
	return out, err
}
