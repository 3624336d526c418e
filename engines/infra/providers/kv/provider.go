// Package kvprovider is the infra engine's kv provider: the kv_key
// resource type and data source, which write and read keys of cairn's own
// key-value store.
//
// It reaches the store through the Store service the kv module provides as
// "kv" (the interface is declared here, by its consumer), never by
// importing the kv engine: engines meet in the
// journal and the service registry. Every write is one journal event
// carrying the actor of the plan or apply.
package kvprovider

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

func init() { provider.Register(New()) }

// Store is what this provider needs of cairn's key-value store, as the kv
// module provides it under the name "kv": single-key writes and reads, each
// write one journal event with the given actor.
type Store interface {
	// Put writes key=value and returns the revision.
	Put(ctx context.Context, actor journal.Actor, key, value []byte) (rev int64, err error)
	// Get reads key now.
	Get(ctx context.Context, key []byte) (value []byte, found bool, err error)
	// Delete deletes key and says whether it existed.
	Delete(ctx context.Context, actor journal.Actor, key []byte) (deleted bool, err error)
}

// errNotRunning is Open's answer when no kv service is provided.
var errNotRunning = errors.New("the kv engine is not running in this daemon")

// Provider is the kv provider.
type Provider struct{}

var _ provider.Provider = (*Provider)(nil)

// New returns the kv provider.
func New() *Provider { return &Provider{} }

// Name returns "kv".
func (*Provider) Name() string { return "kv" }

// Resources returns the kv_key resource type.
func (*Provider) Resources() map[string]provider.Resource {
	return map[string]provider.Resource{"kv_key": keyResource{}}
}

// DataSources returns the kv_key data source.
func (*Provider) DataSources() map[string]provider.DataSource {
	return map[string]provider.DataSource{"kv_key": keyData{}}
}

// Open looks up the kv service and binds it to env's actor.
func (*Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	if env.Services == nil {
		return nil, errNotRunning
	}
	kv, ok := env.Services.Lookup("kv").(Store)
	if !ok {
		return nil, errNotRunning
	}
	return &session{kv: kv, actor: env.Actor}, nil
}

// session is the kv service and who writes through it. It caches nothing:
// reads are cheap and the store is the truth.
type session struct {
	kv    Store
	actor journal.Actor
}

func (*session) Close() error { return nil }

// sessionOf returns s as this provider's session.
func sessionOf(s provider.Session) (*session, error) {
	ks, ok := s.(*session)
	if !ok || ks == nil {
		return nil, fmt.Errorf("kv provider: given a %T, not a kv session", s)
	}
	return ks, nil
}
