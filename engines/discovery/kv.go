package discovery

import (
	"fmt"
	"sort"
	"strings"
)

// kvTx reads and writes KV entries over the committed state: the writes
// of one request (a txn's earlier operations) are seen by its later ones,
// and become the request's ops.
type kvTx struct {
	r     reader
	seq   int64
	over  map[string]*kvEntry // nil: deleted in this request
	order []string
	// locked says whether a session may take a key now: false while the
	// key is in a lock delay after its holder's session ended.
	locked func(key string) bool
	// current, when set, answers a key's committed state from memory
	// (mirror.kvCurrent); ok false sends the read to the projection.
	current func(key string) (e *kvEntry, ok bool)
}

func newKVTx(r reader, seq int64, locked func(string) bool) *kvTx {
	if locked == nil {
		locked = func(string) bool { return false }
	}
	return &kvTx{r: r, seq: seq, over: map[string]*kvEntry{}, locked: locked}
}

func (t *kvTx) get(key string) (*kvEntry, error) {
	if e, ok := t.over[key]; ok {
		return e, nil
	}
	if t.current != nil {
		if e, ok := t.current(key); ok {
			if e == nil {
				return nil, nil
			}
			c := *e // the mirror's entries are shared
			return &c, nil
		}
	}
	var e kvEntry
	ok, err := t.r.get(tabKV, key, &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

func (t *kvTx) put(e *kvEntry) {
	if _, seen := t.over[e.Key]; !seen {
		t.order = append(t.order, e.Key)
	}
	t.over[e.Key] = e
}

func (t *kvTx) del(key string) {
	if _, seen := t.over[key]; !seen {
		t.order = append(t.order, key)
	}
	t.over[key] = nil
}

// list returns the entries under prefix, sorted, this request's writes
// included.
func (t *kvTx) list(prefix string) ([]*kvEntry, error) {
	got := map[string]*kvEntry{}
	err := t.r.each(tabKV, prefix, func(id string, b []byte) error {
		e := &kvEntry{}
		if err := parseRecord(b, e); err != nil {
			return fmt.Errorf("read key %q: %w", id, err)
		}
		got[id] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, e := range t.over {
		if strings.HasPrefix(k, prefix) {
			if e == nil {
				delete(got, k)
			} else {
				got[k] = e
			}
		}
	}
	out := make([]*kvEntry, 0, len(got))
	for _, e := range got {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ops are the request's writes, in the order first made.
func (t *kvTx) ops() []op {
	out := make([]op, 0, len(t.order))
	for _, k := range t.order {
		o := op{Table: tabKV, ID: k}
		if e := t.over[k]; e != nil {
			o.kv = e
		}
		out = append(out, o)
	}
	return out
}

// kvWrite is one KV write as Consul's PUT and DELETE and the txn verbs
// ask it.
type kvWrite struct {
	Verb    string // set, cas, lock, unlock, delete, delete-cas, delete-tree
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64 // for cas and delete-cas
	Session string // for lock and unlock
}

// errKV is a write that cannot be done (Consul answers it with an error,
// not false).
type errKV struct{ msg string }

func (e *errKV) Error() string { return e.msg }

// apply does w, reporting whether it happened (false: a CAS or a lock
// that did not hold).
func (t *kvTx) apply(w kvWrite, sessionOK func(id string) (bool, error)) (bool, error) {
	cur, err := t.get(w.Key)
	if err != nil {
		return false, err
	}
	switch w.Verb {
	case "set", "cas", "lock", "unlock":
		if w.Verb == "cas" {
			if w.Index == 0 && cur != nil {
				return false, nil
			}
			if w.Index != 0 && (cur == nil || uint64(cur.ModifyIndex) != w.Index) {
				return false, nil
			}
		}
		e := &kvEntry{Key: w.Key, Value: w.Value, Flags: w.Flags, CreateIndex: t.seq, ModifyIndex: t.seq}
		if cur != nil {
			e.CreateIndex, e.Session, e.LockIndex = cur.CreateIndex, cur.Session, cur.LockIndex
		}
		switch w.Verb {
		case "lock":
			if w.Session == "" {
				return false, &errKV{"missing session"}
			}
			ok, err := sessionOK(w.Session)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, &errKV{fmt.Sprintf("invalid session %q", w.Session)}
			}
			if cur != nil && cur.Session != "" && cur.Session != w.Session {
				return false, nil // held by another session
			}
			if cur == nil || cur.Session != w.Session {
				if t.locked(w.Key) {
					return false, nil
				}
				e.LockIndex++
			}
			e.Session = w.Session
		case "unlock":
			if cur == nil || cur.Session != w.Session {
				return false, nil
			}
			e.Session = ""
		}
		t.put(e)
		return true, nil
	case "delete":
		if cur != nil {
			t.del(w.Key)
		}
		return true, nil
	case "delete-cas":
		if w.Index == 0 {
			return cur == nil, nil
		}
		if cur == nil || uint64(cur.ModifyIndex) != w.Index {
			return false, nil
		}
		t.del(w.Key)
		return true, nil
	case "delete-tree":
		es, err := t.list(w.Key)
		if err != nil {
			return false, err
		}
		for _, e := range es {
			t.del(e.Key)
		}
		return true, nil
	}
	return false, &errKV{fmt.Sprintf("unknown KV operation %q", w.Verb)}
}

// kvKeys is Consul's ?keys answer: the keys under prefix, each cut after
// the first separator past the prefix (and listed once).
func kvKeys(es []*kvEntry, prefix, sep string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, e := range es {
		k := e.Key
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
