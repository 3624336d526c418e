package kvprovider

import (
	"context"
	"reflect"
	"testing"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

// TestKVModule runs the provider against the service the kv module itself
// provides as "kv" when the daemon starts it, so the provider and the
// module agree on the name and the interface.
func TestKVModule(t *testing.T) {
	var mod engines.Module
	for _, m := range engines.New() {
		if m.Name() == "kv" {
			mod = m
		}
	}
	if mod == nil {
		t.Fatal("the kv module is not registered")
	}
	j, err := journal.Open(journal.Options{Dir: t.TempDir(), Node: "test", Logger: quiet, Engines: mod.Engines()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	services := &engines.Services{}
	if err := mod.Start(runCtx, engines.Host{Journal: j, Logger: quiet, Node: "test", Services: services}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := mod.Stop(); err != nil {
			t.Error(err)
		}
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	})

	sess := openSession(t, services)
	r := registered(t).Resources()["kv_key"]
	if _, err := r.Create(ctx, sess, provider.Values{"key": "k", "value": "v"}); err != nil {
		t.Fatal(err)
	}
	got, found, err := r.Read(ctx, sess, "k")
	if err != nil || !found || got.String("value") != "v" {
		t.Errorf("Read = %v, %v, %v", got, found, err)
	}
	kinds, who := actors(t, j)
	if len(kinds) != 1 || kinds[0] != "kv.put" || !reflect.DeepEqual(who[0], alice) {
		t.Errorf("journal holds %q by %+v", kinds, who)
	}
	if err := r.Delete(ctx, sess, "k", got); err != nil {
		t.Fatal(err)
	}
	if _, found, err := r.Read(ctx, sess, "k"); err != nil || found {
		t.Errorf("Read after delete: found=%v, %v", found, err)
	}
}
