package integration

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// consulDaemon starts a daemon serving Consul's API and DNS on free ports
// and returns it with a consul/api client for it (addresses from status).
func consulDaemon(t *testing.T, opts ...daemonOpt) (*daemonProc, *api.Client) {
	t.Helper()
	d := startDaemon(t, append([]daemonOpt{withFlags("--http", "127.0.0.1:0", "--dns", "127.0.0.1:0")}, opts...)...)
	return d, consulClient(t, d)
}

func consulClient(t *testing.T, d *daemonProc) *api.Client {
	t.Helper()
	addr := d.Status.Listeners["http"]
	if addr == "" || strings.HasSuffix(addr, ":0") || addr != d.Status.HTTP {
		t.Fatalf("status listeners %v: want the HTTP listener's bound address", d.Status.Listeners)
	}
	if dns := d.Status.Listeners["dns"]; dns == "" || dns == "off" || strings.HasSuffix(dns, ":0") {
		t.Fatalf("status listeners %v: want the DNS listener's bound address", d.Status.Listeners)
	}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsulKV drives Consul's KV through consul/api v1.34.5: indexes,
// flags, CAS, recurse/keys/separator/raw, deletes, and /v1/txn.
func TestConsulKV(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	kv := c.KV()

	if p, _, err := kv.Get("app/missing", nil); err != nil || p != nil {
		t.Fatalf("get of a missing key: %v %v, want nil, nil", p, err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/db/url", Value: []byte("postgres://a"), Flags: 42}, nil); err != nil {
		t.Fatal(err)
	}
	p, meta, err := kv.Get("app/db/url", nil)
	if err != nil || p == nil {
		t.Fatalf("get: %v %v", p, err)
	}
	if string(p.Value) != "postgres://a" || p.Flags != 42 || p.CreateIndex == 0 || p.ModifyIndex != p.CreateIndex || meta.LastIndex != p.ModifyIndex || !meta.KnownLeader {
		t.Fatalf("get after put: %+v meta %+v", p, meta)
	}
	created := p.CreateIndex

	// CAS: a stale index loses, the current one wins; cas=0 only creates.
	ok, _, err := kv.CAS(&api.KVPair{Key: "app/db/url", Value: []byte("stale"), ModifyIndex: p.ModifyIndex + 1000}, nil)
	if err != nil || ok {
		t.Fatalf("CAS with a wrong index: %v %v, want false", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/db/url", Value: []byte("postgres://b"), ModifyIndex: p.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS with the current index: %v %v, want true", ok, err)
	}
	if ok, _, _ := kv.CAS(&api.KVPair{Key: "app/db/url", Value: []byte("x"), ModifyIndex: 0}, nil); ok {
		t.Fatal("CAS index 0 on an existing key succeeded")
	}
	if ok, _, _ := kv.CAS(&api.KVPair{Key: "app/new", Value: []byte("n"), ModifyIndex: 0}, nil); !ok {
		t.Fatal("CAS index 0 on a missing key failed")
	}
	p, _, _ = kv.Get("app/db/url", nil)
	if string(p.Value) != "postgres://b" || p.CreateIndex != created || p.ModifyIndex <= created || p.Flags != 0 {
		t.Fatalf("after CAS: %+v, want value b, create index %d kept, flags reset to 0", p, created)
	}

	for _, k := range []string{"app/db/user", "app/web/port", "app/web/tls/cert", "other/x"} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte(k)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	list, _, err := kv.List("app/", nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range list {
		keys = append(keys, p.Key)
	}
	if want := []string{"app/db/url", "app/db/user", "app/new", "app/web/port", "app/web/tls/cert"}; !slices.Equal(keys, want) {
		t.Fatalf("recurse app/: %v, want %v", keys, want)
	}
	names, _, err := kv.Keys("app/", "/", nil)
	if want := []string{"app/db/", "app/new", "app/web/"}; err != nil || !slices.Equal(names, want) {
		t.Fatalf("keys app/ separator /: %v %v, want %v", names, err, want)
	}
	if code, body := httpGet(t, "http://"+d.Status.HTTP+"/v1/kv/app/db/user?raw"); code != 200 || string(body) != "app/db/user" {
		t.Fatalf("?raw: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+d.Status.HTTP+"/v1/kv/nope"); code != 404 {
		t.Fatalf("GET of a missing key: %d, want 404", code)
	}

	// Deletes: CAS, one key, a tree.
	p, _, _ = kv.Get("app/new", nil)
	if ok, _, _ := kv.DeleteCAS(&api.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex + 1}, nil); ok {
		t.Fatal("delete-cas with a wrong index succeeded")
	}
	if ok, _, _ := kv.DeleteCAS(&api.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex}, nil); !ok {
		t.Fatal("delete-cas with the current index failed")
	}
	if _, err := kv.DeleteTree("app/web/", nil); err != nil {
		t.Fatal(err)
	}
	names, _, _ = kv.Keys("app/", "", nil)
	if want := []string{"app/db/url", "app/db/user"}; !slices.Equal(names, want) {
		t.Fatalf("after deletes: %v, want %v", names, want)
	}

	// A txn: all or nothing, one event.
	ok, resp, _, err := c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "tx/a", Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: "app/db/url"}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "tx/b", Value: []byte("2")}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Fatalf("failing txn: ok %v resp %+v err %v, want an error at op 1", ok, resp, err)
	}
	if p, _, _ := kv.Get("tx/a", nil); p != nil {
		t.Fatal("a failed txn wrote tx/a")
	}
	ok, resp, _, err = c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "tx/a", Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "tx/b", Value: []byte("2"), Flags: 7}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "app/db/url"}},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 3 || string(resp.Results[2].KV.Value) != "postgres://b" {
		t.Fatalf("txn: ok %v resp %+v err %v", ok, resp, err)
	}
	if resp.Results[0].KV.ModifyIndex != resp.Results[1].KV.ModifyIndex {
		t.Fatalf("a txn's writes have indexes %d and %d, want one", resp.Results[0].KV.ModifyIndex, resp.Results[1].KV.ModifyIndex)
	}
	evs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=consul_kv.txn"))
	if len(evs) != 1 || evs[0].Seq != int64(resp.Results[0].KV.ModifyIndex) || evs[0].Actor.Via != "http" {
		t.Fatalf("consul_kv.txn events %+v, want one at seq %d via http", evs, resp.Results[0].KV.ModifyIndex)
	}
}

// TestConsulKVBlocking: a blocking query (?index=N) returns when the key
// changes, with the new index, and at the wait's end when nothing changed.
func TestConsulKVBlocking(t *testing.T) {
	t.Parallel()
	_, c := consulDaemon(t)
	kv := c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "cfg/mode", Value: []byte("a")}, nil); err != nil {
		t.Fatal(err)
	}
	p, meta, err := kv.Get("cfg/mode", nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		p    *api.KVPair
		meta *api.QueryMeta
		err  error
	}
	got := make(chan result, 1)
	go func() {
		p, m, err := kv.Get("cfg/mode", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 2 * time.Minute})
		got <- result{p, m, err}
	}()
	// An unrelated write wakes the query, which goes back to waiting: its
	// key has not changed.
	if _, err := kv.Put(&api.KVPair{Key: "cfg/other", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		t.Fatalf("the blocking query returned on another key's write: %+v %+v %v", r.p, r.meta, r.err)
	default:
	}
	if _, err := kv.Put(&api.KVPair{Key: "cfg/mode", Value: []byte("b")}, nil); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.p == nil || string(r.p.Value) != "b" || r.meta.LastIndex <= p.ModifyIndex || r.meta.LastIndex != r.p.ModifyIndex {
		t.Fatalf("blocking query: %+v %+v %v, want value b at a new index", r.p, r.meta, r.err)
	}
	// Nothing changes: the query returns at the end of its wait with the
	// same index.
	_, m2, err := kv.Get("cfg/mode", &api.QueryOptions{WaitIndex: r.meta.LastIndex, WaitTime: 50 * time.Millisecond})
	if err != nil || m2.LastIndex != r.meta.LastIndex {
		t.Fatalf("a blocking query with nothing changing: %+v %v", m2, err)
	}
	// A prefix listing blocks too.
	go func() {
		_, m, err := kv.List("jobs/", &api.QueryOptions{WaitIndex: m2.LastIndex, WaitTime: 2 * time.Minute})
		got <- result{nil, m, err}
	}()
	if _, err := kv.Put(&api.KVPair{Key: "jobs/1", Value: bytes.Repeat([]byte("j"), 10)}, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || r.meta.LastIndex <= m2.LastIndex {
		t.Fatalf("blocking list: %+v %v", r.meta, r.err)
	}
}

// TestStatusListeners: status lists every listener with its bound address:
// the socket, NATS, HTTP, DNS, and the etcd API when asked for.
func TestStatusListeners(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--http", "127.0.0.1:0", "--dns", "127.0.0.1:0", "--etcd", "127.0.0.1:0"))
	l := d.Status.Listeners
	if l["socket"] != d.Socket || l["http"] != d.Status.HTTP || !strings.HasPrefix(l["nats"], "nats://127.0.0.1:") {
		t.Fatalf("listeners %v", l)
	}
	for _, name := range []string{"dns", "etcd"} {
		if !strings.HasPrefix(l[name], "127.0.0.1:") || strings.HasSuffix(l[name], ":0") {
			t.Fatalf("listener %s: %q, want its bound address (listeners %v)", name, l[name], l)
		}
	}
	off := startDaemon(t, withFlags("--dns", "off"))
	if off.Status.Listeners["dns"] != "off" || off.Status.Listeners["etcd"] != "off" {
		t.Fatalf("listeners with --dns off and no --etcd: %v", off.Status.Listeners)
	}
}

// TestConsulRebuild: the discovery engine's state folded live is the one
// `journal rebuild` refolds from its events, and emit cannot forge them.
func TestConsulRebuild(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	for _, kind := range []string{"consul_kv.set", "discovery.check", "discovery.service.register"} {
		if _, errOut, code := cli(t, d, "emit", kind, "x", "a=b"); code != 2 || !strings.Contains(errOut, "belongs to") {
			t.Errorf("emit %s: exit %d %q, want refused", kind, code, errOut)
		}
	}
	kv := c.KV()
	kv.Put(&api.KVPair{Key: "a", Value: []byte{0xff, 0xfe}, Flags: api.SemaphoreFlagValue}, nil)
	kv.Put(&api.KVPair{Key: "b/c", Value: []byte("x")}, nil)
	c.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t", Value: []byte("1")}}, {KV: &api.KVTxnOp{Verb: api.KVDeleteTree, Key: "b/"}}}, nil)
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "svc", Check: &api.AgentServiceCheck{TTL: "1h"}}); err != nil {
		t.Fatal(err)
	}
	c.Agent().PassTTL("service:svc", "ok")
	id, _, err := c.Session().Create(&api.SessionEntry{Name: "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv.Acquire(&api.KVPair{Key: "lock", Session: id}, nil)
	for _, r := range parseNDJSON[rebuildRow](t, cliOK(t, d, "-o", "json", "journal", "rebuild")) {
		if !r.Same {
			t.Errorf("stream %s folded live to %s but refolds to %s", r.Stream, r.Before, r.After)
		}
	}
	p, _, err := kv.Get("a", nil)
	if err != nil || p == nil || p.Flags != api.SemaphoreFlagValue || string(p.Value) != "\xff\xfe" {
		t.Fatalf("a after rebuild: %+v %v", p, err)
	}
}
