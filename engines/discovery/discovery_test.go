package discovery

import (
	"bytes"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnhq/cairn/journal"
)

// mapReader is a reader over records in a map, as the projection holds
// them.
type mapReader map[string][]byte

func (r mapReader) get(table, id string, v any) (bool, error) {
	b, ok := r[table+"/"+id]
	if !ok {
		return false, nil
	}
	return true, parseRecord(b, v)
}

func (r mapReader) each(table, prefix string, fn func(id string, b []byte) error) error {
	var keys []string
	for k := range r {
		if strings.HasPrefix(k, table+"/"+prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k[len(table)+1:], r[k]); err != nil {
			return err
		}
	}
	return nil
}

// commit writes a request's ops into r, as Fold does.
func (r mapReader) commit(t *testing.T, ops []op) {
	t.Helper()
	// Through the journal's encoding and back, as Fold sees them.
	b, err := journal.EncodeBody(&journal.Body{Kind: KindKVTxn, Data: map[string]any{"ops": opsData(ops)}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := journal.DecodeBody(b)
	if err != nil {
		t.Fatal(err)
	}
	if ops, err = opsOf(body.Data); err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if o.Rec == nil {
			delete(r, o.Table+"/"+o.ID)
			continue
		}
		b, err := recordBytes(o.Rec)
		if err != nil {
			t.Fatal(err)
		}
		r[o.Table+"/"+o.ID] = b
	}
}

func TestRecordRoundTrip(t *testing.T) {
	in := &kvEntry{Key: "k", Value: []byte{0xff, 0, 'x'}, Flags: api.SemaphoreFlagValue, Session: "s", LockIndex: 3, CreateIndex: 7, ModifyIndex: 9}
	rec := recordOf(in)
	if _, ok := rec["value_b64"]; !ok {
		t.Fatalf("a binary value is not base64 in the record: %v", rec)
	}
	// Through the journal's encoding and back, as Fold and the mirror see it.
	body, err := journal.EncodeBody(&journal.Body{Kind: KindKVSet, Data: map[string]any{"ops": opsData([]op{{Table: tabKV, ID: "k", Rec: rec}})}})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := journal.DecodeBody(body)
	if err != nil {
		t.Fatalf("decode the event: %v", err)
	}
	ops, err := opsOf(dec.Data)
	if err != nil || len(ops) != 1 {
		t.Fatalf("ops: %v %v", ops, err)
	}
	var out kvEntry
	if err := decodeRecord(ops[0].Rec, &out); err != nil {
		t.Fatal(err)
	}
	if out.Key != in.Key || !bytes.Equal(out.Value, in.Value) || out.Flags != in.Flags || out.Session != "s" || out.LockIndex != 3 || out.CreateIndex != 7 || out.ModifyIndex != 9 {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
}

func TestKVTxSemantics(t *testing.T) {
	r := mapReader{}
	sessions := map[string]bool{"s1": true, "s2": true}
	sessionOK := func(id string) (bool, error) { return sessions[id], nil }
	delayed := map[string]bool{}
	seq := int64(10)
	step := func(w kvWrite) bool {
		t.Helper()
		seq++
		tx := newKVTx(r, seq, func(k string) bool { return delayed[k] })
		ok, err := tx.apply(w, sessionOK)
		if err != nil {
			t.Fatalf("%+v: %v", w, err)
		}
		r.commit(t, tx.ops())
		return ok
	}
	get := func(k string) *kvEntry {
		var e kvEntry
		if ok, _ := r.get(tabKV, k, &e); !ok {
			return nil
		}
		return &e
	}
	if !step(kvWrite{Verb: "set", Key: "a", Value: []byte("1"), Flags: 5}) {
		t.Fatal("set")
	}
	if e := get("a"); e.CreateIndex != 11 || e.ModifyIndex != 11 || e.Flags != 5 {
		t.Fatalf("after set: %+v", e)
	}
	if step(kvWrite{Verb: "cas", Key: "a", Index: 10}) || !step(kvWrite{Verb: "cas", Key: "a", Value: []byte("2"), Index: 11}) {
		t.Fatal("cas")
	}
	if e := get("a"); e.CreateIndex != 11 || e.ModifyIndex != 13 || string(e.Value) != "2" {
		t.Fatalf("after cas: %+v", e)
	}
	// Locks: one session holds, another cannot take it, the holder
	// re-acquires without a new lock index, a release frees it.
	if !step(kvWrite{Verb: "lock", Key: "l", Session: "s1"}) || step(kvWrite{Verb: "lock", Key: "l", Session: "s2"}) {
		t.Fatal("lock by s1, then s2")
	}
	if !step(kvWrite{Verb: "lock", Key: "l", Session: "s1", Value: []byte("v")}) || get("l").LockIndex != 1 {
		t.Fatalf("re-lock by the holder: %+v", get("l"))
	}
	if step(kvWrite{Verb: "unlock", Key: "l", Session: "s2"}) || !step(kvWrite{Verb: "unlock", Key: "l", Session: "s1"}) || get("l").Session != "" {
		t.Fatalf("unlock: %+v", get("l"))
	}
	delayed["l"] = true
	if step(kvWrite{Verb: "lock", Key: "l", Session: "s2"}) {
		t.Fatal("a lock during the key's lock delay")
	}
	delayed["l"] = false
	if !step(kvWrite{Verb: "lock", Key: "l", Session: "s2"}) || get("l").LockIndex != 2 {
		t.Fatalf("lock by s2: %+v", get("l"))
	}
	tx := newKVTx(r, seq+1, nil)
	if _, err := tx.apply(kvWrite{Verb: "lock", Key: "x", Session: "nope"}, sessionOK); err == nil || !strings.Contains(err.Error(), "invalid session") {
		t.Fatalf("lock with an unknown session: %v", err)
	}
	// A tree delete sees the writes made before it in the same request.
	tx = newKVTx(r, seq+1, nil)
	tx.apply(kvWrite{Verb: "set", Key: "t/1"}, sessionOK)
	tx.apply(kvWrite{Verb: "set", Key: "t/2"}, sessionOK)
	tx.apply(kvWrite{Verb: "delete-tree", Key: "t/"}, sessionOK)
	if es, _ := tx.list("t/"); len(es) != 0 {
		t.Fatalf("after delete-tree in one txn: %v", es)
	}
}

func TestKVKeys(t *testing.T) {
	es := []*kvEntry{{Key: "a/b/c"}, {Key: "a/b/d"}, {Key: "a/e"}, {Key: "a/f/"}}
	if got := kvKeys(es, "a/", "/"); !slices.Equal(got, []string{"a/b/", "a/e", "a/f/"}) {
		t.Fatalf("separator /: %v", got)
	}
	if got := kvKeys(es, "a/", ""); len(got) != 4 {
		t.Fatalf("no separator: %v", got)
	}
}

func TestParseDNSName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want dnsQuery
		ok   bool
	}{
		{"web.service.consul.", dnsQuery{service: "web"}, true},
		{"WEB.service.dc1.consul", dnsQuery{service: "web"}, true},
		{"v1.web.service.consul.", dnsQuery{service: "web", tag: "v1"}, true},
		{"_web._tcp.service.consul.", dnsQuery{service: "web"}, true},
		{"_web._v1.service.consul.", dnsQuery{service: "web", tag: "v1"}, true},
		{"host1.node.consul.", dnsQuery{node: "host1"}, true},
		{"service.consul.", dnsQuery{}, false},
		{"a.b.c.service.consul.", dnsQuery{}, false},
		{"web.service.example.com.", dnsQuery{}, false},
	} {
		got, ok := parseDNSName(tc.name)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCheckFrom(t *testing.T) {
	root := journal.Actor{UID: 0, GID: 0}
	for _, tc := range []struct {
		def  api.AgentServiceCheck
		want string
	}{
		{api.AgentServiceCheck{HTTP: "http://x"}, "Interval must be > 0"},
		{api.AgentServiceCheck{TTL: "0s"}, "TTL must be > 0"},
		{api.AgentServiceCheck{TTL: "10s", HTTP: "http://x", Interval: "1s"}, "must be one of"},
		{api.AgentServiceCheck{GRPC: "x:1", Interval: "1s"}, "only TTL, HTTP, TCP and script"},
		{api.AgentServiceCheck{TCP: "x:1", Interval: "soon"}, "Interval"},
		{api.AgentServiceCheck{TTL: "10s", Status: "sick"}, "invalid initial status"},
	} {
		if _, err := checkFrom(&tc.def, "c", "c", root); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.def, err, tc.want)
		}
	}
	c, err := checkFrom(&api.AgentServiceCheck{Args: []string{"true"}, Interval: "100ms"}, "s", "s", journal.Actor{UID: 1000, GID: 1000})
	if err != nil || c.RunAsUID != 1000 || c.RunAsGID != 1000 || c.Interval != int64(time.Second) || c.Status != stateCritical {
		t.Fatalf("script check: %+v %v, want run as 1000, interval raised to 1s, critical", c, err)
	}
}

func TestLockDelayOf(t *testing.T) {
	for in, want := range map[string]time.Duration{"": defaultLockDelay, `"5s"`: 5 * time.Second, `15`: 15 * time.Second, `1000000000`: time.Second} {
		got, err := lockDelayOf([]byte(in))
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
}

func TestKVFromRec(t *testing.T) {
	in := &kvEntry{Key: "k", Value: []byte("v"), Flags: 1 << 63, Session: "s", LockIndex: 2, CreateIndex: 3, ModifyIndex: 4}
	body, err := journal.EncodeBody(&journal.Body{Kind: KindKVSet, Data: map[string]any{"rec": kvRecord(in)}})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := journal.DecodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kvFromRec(dec.Data["rec"].(map[string]any))
	if err != nil || got.Key != "k" || string(got.Value) != "v" || got.Flags != in.Flags || got.Session != "s" || got.LockIndex != 2 || got.CreateIndex != 3 || got.ModifyIndex != 4 {
		t.Fatalf("kvFromRec: %+v %v, want %+v", got, err, in)
	}
	b, _ := recordBytes(kvRecord(in))
	if p, err := parseKV(b); err != nil || p.Flags != in.Flags || string(p.Value) != "v" || p.ModifyIndex != 4 {
		t.Fatalf("parseKV: %+v %v", p, err)
	}
}

// applyKV folds a consul_kv.set of key at seq into the mirror, as the
// journal subscription does.
func applyKV(t *testing.T, m *mirror, seq int64, key, value string) {
	t.Helper()
	e := &kvEntry{Key: key, Value: []byte(value), CreateIndex: seq, ModifyIndex: seq}
	b, err := journal.EncodeBody(&journal.Body{Kind: KindKVSet, Data: map[string]any{"ops": opsData([]op{{Table: tabKV, ID: key, kv: e}})}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := journal.DecodeBody(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.apply(&journal.Event{Seq: seq, Body: body}); err != nil {
		t.Fatal(err)
	}
}

func TestBlockingQuery(t *testing.T) {
	m := newModule()
	applyKV(t, m.mir, 5, "k", "a")
	get := func(url string) chan *httptest.ResponseRecorder {
		out := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", url, nil)
			req.SetPathValue("key", "k")
			m.kvGet(rec, req)
			out <- rec
		}()
		return out
	}
	// Blocks at index 5 until the key changes; another key's change
	// wakes it but does not answer it.
	done := get("/v1/kv/k?index=5&wait=10h")
	applyKV(t, m.mir, 6, "other", "x")
	applyKV(t, m.mir, 7, "k", "b")
	rec := <-done
	if rec.Code != 200 || rec.Header().Get("X-Consul-Index") != "7" || !strings.Contains(rec.Body.String(), `"ModifyIndex":7`) {
		t.Fatalf("blocking GET: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// Without a free slot, a blocking query answers at once: memory stays
	// bounded however many wait.
	m.blockingSlots = make(slots)
	rec = <-get("/v1/kv/k?index=7&wait=10h")
	if rec.Code != 200 || rec.Header().Get("X-Consul-Index") != "7" || rec.Header().Get("X-Consul-KnownLeader") != "true" {
		t.Fatalf("GET with no slot: %d %v", rec.Code, rec.Header())
	}
}
