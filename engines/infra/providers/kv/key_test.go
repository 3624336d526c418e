package kvprovider

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/engines/kv"
	"github.com/cairnhq/cairn/journal"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	alice = journal.Actor{UID: 1000, GID: 1000, PID: 42, User: "alice", Via: "socket"}
)

// openStore starts a real kv.Store on a real journal in a temporary
// directory.
func openStore(t *testing.T) (*kv.Store, *journal.Journal) {
	t.Helper()
	s := kv.New(kv.Options{Logger: quiet})
	j, err := journal.Open(journal.Options{
		Dir: t.TempDir(), Node: "test", Logger: quiet,
		Engines: map[string][]journal.Engine{journal.Audit: {s.Engine()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	if err := s.Start(runCtx, j); err != nil {
		cancel()
		j.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.Stop()
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, j
}

// The kv module's own service is what the provider uses.
var _ Store = kv.Service{}

func registered(t *testing.T) provider.Provider {
	t.Helper()
	p, ok := provider.All()["kv"]
	if !ok {
		t.Fatal(`provider "kv" is not registered`)
	}
	return p
}

// openSession opens the provider on services that provide "kv".
func openSession(t *testing.T, services *engines.Services) provider.Session {
	t.Helper()
	sess, err := registered(t).Open(ctx, provider.Env{Actor: alice, Services: services})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// rangeKey reads key through the store's own Range.
func rangeKey(t *testing.T, s *kv.Store, key string) (kv.KeyValue, bool) {
	t.Helper()
	r, err := s.Range(ctx, kv.RangeRequest{Key: []byte(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.KVs) == 0 {
		return kv.KeyValue{}, false
	}
	return r.KVs[0], true
}

// actors returns the actors of the kv events of the audit stream, in order.
func actors(t *testing.T, j *journal.Journal) (kinds []string, who []journal.Actor) {
	t.Helper()
	it := j.Stream(journal.Audit).Scan(journal.Query{Kind: "kv.*"})
	defer it.Close()
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ev.Kind)
		who = append(who, ev.Actor)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return kinds, who
}

func TestKeyLifecycle(t *testing.T) {
	store, j := openStore(t)
	var services engines.Services
	services.Provide("kv", kv.NewService(store))
	sess := openSession(t, &services)
	r := registered(t).Resources()["kv_key"]

	planned := provider.Values{"key": "app/config", "value": "v1"}
	if err := r.Validate(planned, nil); err != nil {
		t.Fatal(err)
	}
	id, err := r.ID(planned)
	if err != nil || id != "app/config" {
		t.Fatalf("ID = %q, %v", id, err)
	}
	if _, found, err := r.Read(ctx, sess, id); err != nil || found {
		t.Fatalf("Read before create: found=%v, %v", found, err)
	}

	got, err := r.Create(ctx, sess, planned)
	if err != nil {
		t.Fatal(err)
	}
	if got.String("key") != "app/config" || got.String("value") != "v1" {
		t.Errorf("Create returned %v", got)
	}
	if kvp, ok := rangeKey(t, store, "app/config"); !ok || string(kvp.Value) != "v1" || kvp.Version != 1 {
		t.Errorf("store holds %+v, %v; want v1 at version 1", kvp, ok)
	}
	read, found, err := r.Read(ctx, sess, id)
	if err != nil || !found || read.String("value") != "v1" || read.String("key") != "app/config" {
		t.Errorf("Read = %v, %v, %v", read, found, err)
	}

	next := planned.Clone()
	next["value"] = "v2"
	if _, err := r.Update(ctx, sess, id, read, next); err != nil {
		t.Fatal(err)
	}
	if kvp, ok := rangeKey(t, store, "app/config"); !ok || string(kvp.Value) != "v2" || kvp.Version != 2 {
		t.Errorf("store holds %+v, %v; want v2 at version 2", kvp, ok)
	}

	if err := r.Delete(ctx, sess, id, next); err != nil {
		t.Fatal(err)
	}
	if kvp, ok := rangeKey(t, store, "app/config"); ok {
		t.Errorf("store still holds %+v after delete", kvp)
	}
	if _, found, err := r.Read(ctx, sess, id); err != nil || found {
		t.Errorf("Read after delete: found=%v, %v", found, err)
	}
	// Deleting a key already gone is done, and writes nothing.
	if err := r.Delete(ctx, sess, id, next); err != nil {
		t.Errorf("second delete: %v", err)
	}

	kinds, who := actors(t, j)
	if strings.Join(kinds, " ") != "kv.put kv.put kv.delete" {
		t.Errorf("journal kinds = %q", kinds)
	}
	for i, a := range who {
		if !reflect.DeepEqual(a, alice) {
			t.Errorf("event %d (%s) by %+v, want %+v", i, kinds[i], a, alice)
		}
	}
}

func TestReadRefusesBinary(t *testing.T) {
	store, _ := openStore(t)
	if _, err := store.Put(ctx, alice, kv.PutRequest{Key: []byte("bin"), Value: []byte{0xff, 0x00}}); err != nil {
		t.Fatal(err)
	}
	var services engines.Services
	services.Provide("kv", kv.NewService(store))
	sess := openSession(t, &services)
	_, _, err := registered(t).Resources()["kv_key"].Read(ctx, sess, "bin")
	if err == nil || !strings.Contains(err.Error(), `the value of "bin" is not valid UTF-8`) {
		t.Errorf("Read of a binary value: %v", err)
	}
}

func TestDataSource(t *testing.T) {
	store, _ := openStore(t)
	if _, err := store.Put(ctx, alice, kv.PutRequest{Key: []byte("cluster/name"), Value: []byte("east")}); err != nil {
		t.Fatal(err)
	}
	var services engines.Services
	services.Provide("kv", kv.NewService(store))
	sess := openSession(t, &services)
	d := registered(t).DataSources()["kv_key"]

	v, err := d.Read(ctx, sess, provider.Values{"key": "cluster/name"})
	if err != nil || v.String("value") != "east" {
		t.Errorf("Read = %v, %v", v, err)
	}
	_, err = d.Read(ctx, sess, provider.Values{"key": "cluster/missing"})
	if err == nil || !strings.Contains(err.Error(), `key "cluster/missing" does not exist in the kv store`) {
		t.Errorf("Read of a missing key: %v", err)
	}
}

func TestOpenWithoutKV(t *testing.T) {
	p := registered(t)
	var empty engines.Services
	var other engines.Services
	other.Provide("kv", "not a kv")
	for name, env := range map[string]provider.Env{
		"no services":  {},
		"no kv":        {Services: &empty},
		"nil registry": {Services: (*engines.Services)(nil)},
		"not a KV":     {Services: &other},
	} {
		_, err := p.Open(ctx, env)
		if err == nil || err.Error() != "the kv engine is not running in this daemon" {
			t.Errorf("%s: Open = %v", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	r := registered(t).Resources()["kv_key"]
	for _, tc := range []struct {
		v     provider.Values
		known map[string]bool
		err   string
	}{
		{v: provider.Values{"key": "a", "value": ""}},
		{v: provider.Values{}, known: map[string]bool{"key": true, "value": true}},
		{v: provider.Values{"key": "", "value": "x"}, err: "key is empty"},
		{v: provider.Values{"value": "x"}, err: "key is required"},
		{v: provider.Values{"key": "a"}, err: "value is required"},
	} {
		err := r.Validate(tc.v, tc.known)
		if tc.err == "" {
			if err != nil {
				t.Errorf("Validate(%v) = %v", tc.v, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Validate(%v) = %v; want %q", tc.v, err, tc.err)
		}
	}
	if _, err := r.ID(provider.Values{"key": ""}); err == nil {
		t.Error("ID of an empty key succeeded")
	}
	if sc := r.Schema(); !sc.Attributes["key"].ForceNew || !sc.Attributes["key"].Required || !sc.Attributes["value"].Required {
		t.Errorf("schema: %+v %+v", sc.Attributes["key"], sc.Attributes["value"])
	}
}
