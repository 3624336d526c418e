// Package consulprovider is hashicorp/consul's consul_keys,
// consul_key_prefix and consul_service under Terraform's schemas, mapped
// onto cairn's discovery engine (its Consul-compatible KV store and
// catalog), reached through the "services" service it provides: every
// write is a journal event with the applying caller as actor, and Consul
// clients (consul/api) read it back.
package consulprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

func init() { provider.Register(New()) }

// Discovery is what this provider needs of the discovery engine, as it
// provides it under the name "services".
type Discovery interface {
	KVGet(key string) (value []byte, flags uint64, found bool)
	KVList(prefix string) map[string][]byte
	KVPut(ctx context.Context, actor journal.Actor, key string, value []byte, flags uint64) error
	KVDelete(ctx context.Context, actor journal.Actor, key string) error
	Register(ctx context.Context, actor journal.Actor, id, name, address string, port int, tags []string, checkHTTP, checkTCP string, interval time.Duration) error
	Deregister(ctx context.Context, actor journal.Actor, id string) error
	Service(id string) (name, address string, port int, tags []string, found bool)
}

// datacenter is the one datacenter the discovery engine is.
const datacenter = "dc1"

// Provider is the consul provider.
type Provider struct{}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Sourced  = (*Provider)(nil)
)

// New returns the consul provider.
func New() *Provider { return &Provider{} }

// Name returns "consul".
func (*Provider) Name() string { return "consul" }

// Source is the Terraform provider it stands for.
func (*Provider) Source() string { return "hashicorp/consul" }

// Resources returns consul_keys, consul_key_prefix and consul_service.
func (*Provider) Resources() map[string]provider.Resource {
	return map[string]provider.Resource{
		"consul_keys":       keysResource{},
		"consul_key_prefix": prefixResource{},
		"consul_service":    serviceResource{},
	}
}

// DataSources returns consul_keys.
func (*Provider) DataSources() map[string]provider.DataSource {
	return map[string]provider.DataSource{"consul_keys": keysData{}}
}

var errNotRunning = errors.New("the discovery engine is not running in this daemon")

// Open looks up the discovery engine.
func (*Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	if env.Services == nil {
		return nil, errNotRunning
	}
	d, ok := env.Services.Lookup("services").(Discovery)
	if !ok {
		return nil, errNotRunning
	}
	return &session{d: d, actor: env.Actor}, nil
}

type session struct {
	d     Discovery
	actor journal.Actor
}

func (*session) Close() error { return nil }

func sessionOf(s provider.Session) (*session, error) {
	ss, ok := s.(*session)
	if !ok || ss == nil {
		return nil, fmt.Errorf("consul provider: given a %T, not a consul session", s)
	}
	return ss, nil
}

var dcAttr = &provider.Attribute{Type: provider.String, Optional: true, ForceNew: true,
	Description: "The datacenter to use. cairn's discovery engine is the one datacenter dc1."}

func checkDC(v provider.Values) error {
	if v.Has("datacenter") && v.String("datacenter") != datacenter {
		return fmt.Errorf("datacenter %q: cairn's discovery engine is the one datacenter %q", v.String("datacenter"), datacenter)
	}
	return nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func boolOf(m map[string]any, k string) bool { b, _ := m[k].(bool); return b }

func intOf(m map[string]any, k string) int64 {
	switch n := m[k].(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}
