package kv

import (
	"context"
	"flag"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// StoreService is the name under which the kv module provides its *Store
// to modules built on it (the etcd API); "kv" is the narrower Service.
const StoreService = "kv.store"

// module is the kv engine as the daemon runs it.
type module struct {
	store *Store
}

var (
	_ engines.Module   = (*module)(nil)
	_ engines.Provider = (*module)(nil)
)

func newModule() *module { return &module{store: New(Options{})} }

func (m *module) Name() string { return Name }

// KindPrefixes are the kinds only this engine writes (emit refuses them).
func (m *module) KindPrefixes() []string { return []string{"kv.", "lease."} }

func (m *module) Flags(fs *flag.FlagSet) {}

// Provides are the narrow "kv" service and the whole store.
func (m *module) Provides() []string { return []string{Name, StoreService} }

func (m *module) Engines() map[string][]journal.Engine {
	return map[string][]journal.Engine{journal.Audit: {m.store.Engine()}}
}

func (m *module) Verbs() []engines.Verb { return verbs(m.store) }

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.store.log = h.Logger
	}
	if err := m.store.Start(ctx, h.Journal); err != nil {
		return err
	}
	if h.Services != nil {
		h.Services.Provide(Name, NewService(m.store))
		h.Services.Provide(StoreService, m.store)
	}
	return nil
}

func (m *module) Stop() error {
	m.store.Stop()
	return nil
}
