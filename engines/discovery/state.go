// Package discovery is Consul's HTTP API and DNS on cairn's journal:
// services and their health checks, a KV store with Consul's flags,
// sessions and locks, blocking queries, and `NAME.service.consul` answers.
//
// Every change is one audit event whose data lists the records it sets or
// removes ("ops"), each record whole. The journal engine folds them into
// the projection under p/discovery/ (read by Decide, so a CAS or a lock
// acquire is decided against exactly the committed state), and a
// subscription folds the same events into memory, from where reads, DNS
// and blocking queries are answered.
package discovery

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tables of the projection: each record is stored under its table's
// prefix and its id.
const (
	tabKV      = "kv"
	tabService = "svc"
	tabCheck   = "chk"
	tabSession = "ses"
)

// kvEntry is one Consul KV key.
type kvEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"-"`
	// Flags are a decimal string in records: the journal's CBOR decodes
	// integers as int64, and Consul's flags use all 64 bits (the
	// Semaphore helper's flag value does not fit an int64).
	Flags       uint64 `json:"flags,omitempty,string"`
	Session     string `json:"session,omitempty"`
	LockIndex   int64  `json:"lock_index,omitempty"`
	CreateIndex int64  `json:"create_index"`
	ModifyIndex int64  `json:"modify_index"`
}

// service is one registered service instance.
type service struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Tags              []string          `json:"tags,omitempty"`
	Address           string            `json:"address,omitempty"`
	Port              int               `json:"port,omitempty"`
	Meta              map[string]string `json:"meta,omitempty"`
	EnableTagOverride bool              `json:"enable_tag_override,omitempty"`
	CreateIndex       int64             `json:"create_index"`
	ModifyIndex       int64             `json:"modify_index"`
}

// Check types.
const (
	checkTTL    = "ttl"
	checkHTTP   = "http"
	checkTCP    = "tcp"
	checkScript = "script"
)

// Check states, Consul's.
const (
	statePassing  = "passing"
	stateWarning  = "warning"
	stateCritical = "critical"
)

// check is one health check, of a service or of the node.
type check struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ServiceID   string `json:"service_id,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
	Status      string `json:"status"`
	Output      string `json:"output,omitempty"`
	Notes       string `json:"notes,omitempty"`
	Type        string `json:"type"`

	HTTP          string              `json:"http,omitempty"`
	Method        string              `json:"method,omitempty"`
	Header        map[string][]string `json:"header,omitempty"`
	Body          string              `json:"body,omitempty"`
	TLSSkipVerify bool                `json:"tls_skip_verify,omitempty"`
	TCP           string              `json:"tcp,omitempty"`
	Args          []string            `json:"args,omitempty"`
	// RunAsUID and RunAsGID are who a script check runs as: the caller
	// that registered it.
	RunAsUID int `json:"run_as_uid,omitempty"`
	RunAsGID int `json:"run_as_gid,omitempty"`

	Interval        int64 `json:"interval_ns,omitempty"`
	Timeout         int64 `json:"timeout_ns,omitempty"`
	TTL             int64 `json:"ttl_ns,omitempty"`
	DeregisterAfter int64 `json:"deregister_after_ns,omitempty"`

	// DefIndex is the index of the registration that defined the check;
	// a state change keeps it, a new registration replaces it (the
	// prober restarts).
	DefIndex    int64 `json:"def_index"`
	CreateIndex int64 `json:"create_index"`
	ModifyIndex int64 `json:"modify_index"`
}

// Session behaviours.
const (
	behaviorRelease = "release"
	behaviorDelete  = "delete"
)

// session is one Consul session.
type session struct {
	ID          string   `json:"id"`
	Name        string   `json:"name,omitempty"`
	Node        string   `json:"node"`
	LockDelay   int64    `json:"lock_delay_ns"`
	Behavior    string   `json:"behavior"`
	TTL         string   `json:"ttl,omitempty"`
	Checks      []string `json:"checks,omitempty"`
	CreateIndex int64    `json:"create_index"`
	ModifyIndex int64    `json:"modify_index"`
}

// op is one record an event sets (Rec, or kv) or removes (neither). kv is
// a KV record as Decide writes it, encoded from its struct (kvRecData);
// ops read back from an event always carry Rec.
type op struct {
	Table string
	ID    string
	Rec   map[string]any
	kv    *kvEntry
}

// opData is one op as an event's data["ops"] carries it. A struct encodes
// as the map {"t", "id", "rec"} would: deterministic CBOR sorts a struct's
// keys as a map's, and an absent rec is omitted.
type opData struct {
	T   string `cbor:"t"`
	ID  string `cbor:"id"`
	Rec any    `cbor:"rec,omitempty"`
}

// opsData encodes ops as an event's data["ops"].
func opsData(ops []op) []opData {
	out := make([]opData, len(ops))
	for i, o := range ops {
		out[i] = opData{T: o.Table, ID: o.ID}
		switch {
		case o.kv != nil:
			out[i].Rec = kvRecData(o.kv)
		case o.Rec != nil:
			out[i].Rec = o.Rec
		}
	}
	return out
}

// opsOf reads data["ops"] back.
func opsOf(data map[string]any) ([]op, error) {
	raw, _ := data["ops"].([]any)
	out := make([]op, 0, len(raw))
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("data.ops[%d]: want a map, got %T", i, r)
		}
		t, _ := m["t"].(string)
		id, _ := m["id"].(string)
		if t == "" {
			return nil, fmt.Errorf("data.ops[%d]: no table", i)
		}
		o := op{Table: t, ID: id}
		if rec, ok := m["rec"].(map[string]any); ok {
			o.Rec = rec
		}
		out = append(out, o)
	}
	return out, nil
}

// kvRecord is recordOf for a KV entry, built directly: KV writes are the
// engine's hot path.
func kvRecord(e *kvEntry) map[string]any {
	m := map[string]any{"key": e.Key, "create_index": e.CreateIndex, "modify_index": e.ModifyIndex}
	if e.Flags != 0 {
		m["flags"] = strconv.FormatUint(e.Flags, 10)
	}
	if e.Session != "" {
		m["session"] = e.Session
	}
	if e.LockIndex != 0 {
		m["lock_index"] = e.LockIndex
	}
	if e.Value != nil {
		if utf8.Valid(e.Value) {
			m["value"] = string(e.Value)
		} else {
			m["value_b64"] = base64.StdEncoding.EncodeToString(e.Value)
		}
	}
	return m
}

// kvRecData is kvRecord as a struct: the same CBOR (its keys, and the same
// ones left out), without building a map; KV writes are the hot path.
func kvRecData(e *kvEntry) *kvJSON {
	j := kvJSONOf(e)
	if e.Value != nil {
		if utf8.Valid(e.Value) {
			v := string(e.Value)
			j.Value = &v
		} else {
			j.ValueB64 = base64.StdEncoding.EncodeToString(e.Value)
		}
	}
	return &j
}

// kvJSONOf is e as a kvJSON but for its value, which each caller writes
// as it has it.
func kvJSONOf(e *kvEntry) kvJSON {
	j := kvJSON{Key: e.Key, Session: e.Session, LockIndex: e.LockIndex, CreateIndex: e.CreateIndex, ModifyIndex: e.ModifyIndex}
	if e.Flags != 0 {
		j.Flags = strconv.FormatUint(e.Flags, 10)
	}
	return j
}

// kvJSON is a KV record as the projection stores it (recordBytes), and as
// an event carries it (kvRecData; CBOR reads the json tags).
type kvJSON struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueB64    string  `json:"value_b64,omitempty"`
	Flags       string  `json:"flags,omitempty"`
	Session     string  `json:"session,omitempty"`
	LockIndex   int64   `json:"lock_index,omitempty"`
	CreateIndex int64   `json:"create_index"`
	ModifyIndex int64   `json:"modify_index"`
}

// kvFromRec reads a KV record from an event's map, without a JSON pass.
func kvFromRec(m map[string]any) (*kvEntry, error) {
	e := &kvEntry{}
	e.Key, _ = m["key"].(string)
	e.Session, _ = m["session"].(string)
	e.LockIndex, _ = m["lock_index"].(int64)
	e.CreateIndex, _ = m["create_index"].(int64)
	e.ModifyIndex, _ = m["modify_index"].(int64)
	var err error
	if f, ok := m["flags"].(string); ok {
		if e.Flags, err = strconv.ParseUint(f, 10, 64); err != nil {
			return nil, fmt.Errorf("flags: %w", err)
		}
	}
	if v, ok := m["value"].(string); ok {
		e.Value = []byte(v)
	} else if v, ok := m["value_b64"].(string); ok {
		if e.Value, err = base64.StdEncoding.DecodeString(v); err != nil {
			return nil, fmt.Errorf("value_b64: %w", err)
		}
	}
	return e, nil
}

// parseKV reads a stored KV record.
func parseKV(b []byte) (*kvEntry, error) {
	var j kvJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	e := &kvEntry{Key: j.Key, Session: j.Session, LockIndex: j.LockIndex, CreateIndex: j.CreateIndex, ModifyIndex: j.ModifyIndex}
	var err error
	if j.Flags != "" {
		if e.Flags, err = strconv.ParseUint(j.Flags, 10, 64); err != nil {
			return nil, fmt.Errorf("flags: %w", err)
		}
	}
	switch {
	case j.Value != nil:
		e.Value = []byte(*j.Value)
	case j.ValueB64 != "":
		if e.Value, err = base64.StdEncoding.DecodeString(j.ValueB64); err != nil {
			return nil, fmt.Errorf("value_b64: %w", err)
		}
	}
	return e, nil
}

// recordOf turns a record into the map an event carries: its JSON fields,
// integers as int64 (CBOR keeps them exact), a KV value as text when it is
// UTF-8 and as base64 otherwise.
func recordOf(v any) map[string]any {
	if e, ok := v.(*kvEntry); ok {
		return kvRecord(e)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("discovery: encode %T: %v", v, err)) // our own types always encode
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("discovery: decode %T: %v", v, err))
	}
	return normalize(m).(map[string]any)
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil && strings.ContainsAny(x.String(), ".eE") {
			return f
		}
		// An integer beyond int64 (CBOR would encode it as a uint64,
		// which the journal's decoder refuses) is kept as its text.
		return x.String()
	}
	return v
}

// decodeRecord reads a record map (from an event or JSON) into v.
func decodeRecord(rec map[string]any, v any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if e, ok := v.(*kvEntry); ok {
		switch {
		case rec["value"] != nil:
			s, _ := rec["value"].(string)
			e.Value = []byte(s)
		case rec["value_b64"] != nil:
			s, _ := rec["value_b64"].(string)
			e.Value, err = base64.StdEncoding.DecodeString(s)
		}
	}
	return err
}

// recordBytes is how a record is kept in the projection: its event map as
// JSON.
func recordBytes(rec map[string]any) ([]byte, error) { return json.Marshal(rec) }

// parseRecord reads what recordBytes wrote into v.
func parseRecord(b []byte, v any) error {
	if e, ok := v.(*kvEntry); ok {
		got, err := parseKV(b)
		if err == nil {
			*e = *got
		}
		return err
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return err
	}
	return decodeRecord(normalize(m).(map[string]any), v)
}
