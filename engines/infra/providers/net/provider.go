// Package netprovider is the infra engine's net provider: links, addresses,
// routes and named network namespaces (net_link, net_address, net_route,
// net_namespace), read and changed over rtnetlink in the daemon's namespace
// or any named one.
//
// IDs put the namespace first, empty for the daemon's own:
//
//	net_link       NAMESPACE/NAME              ns1/br0, /br0
//	net_address    NAMESPACE/LINK/CIDR         ns1/br0/10.0.0.1/24
//	net_route      NAMESPACE/DESTINATION       ns1/10.1.0.0/16, ns1/default, ns1/::/0
//	net_namespace  NAME                        ns1
//
// It reaches a named namespace through a netlink socket opened inside it,
// never by moving a shared thread there: what must run inside a namespace
// runs on a thread of its own that dies afterwards (thread.go). A session
// dumps each namespace's links, addresses and routes once and serves every
// read from that (session.go); writes use targeted calls and make the
// dumps they touch stale.
package netprovider

import (
	"context"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func init() { provider.Register(New()) }

// Provider is the net provider.
type Provider struct {
	resources   map[string]provider.Resource
	dataSources map[string]provider.DataSource
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Watcher  = (*Provider)(nil)
)

// New returns the net provider.
func New() *Provider {
	return &Provider{
		resources: map[string]provider.Resource{
			"net_link":      linkResource{},
			"net_address":   addressResource{},
			"net_route":     routeResource{},
			"net_namespace": namespaceResource{},
		},
		dataSources: map[string]provider.DataSource{
			"net_link": linkData{},
		},
	}
}

// Name returns "net".
func (p *Provider) Name() string { return "net" }

// Resources returns the resource types by name.
func (p *Provider) Resources() map[string]provider.Resource {
	out := make(map[string]provider.Resource, len(p.resources))
	for k, v := range p.resources {
		out[k] = v
	}
	return out
}

// DataSources returns the data source types by name.
func (p *Provider) DataSources() map[string]provider.DataSource {
	out := make(map[string]provider.DataSource, len(p.dataSources))
	for k, v := range p.dataSources {
		out[k] = v
	}
	return out
}

// Open starts a session. It opens nothing yet: each namespace gets its
// netlink socket on first use.
func (p *Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	return newSession(), nil
}

// namespaceAttr is the namespace attribute every type but net_namespace
// has.
func namespaceAttr() *provider.Attribute {
	return &provider.Attribute{
		Type: provider.String, Optional: true, ForceNew: true, Default: "",
		Description: `The named network namespace (as ip netns names it, /run/netns/NAME); "" or null for the daemon's own.`,
	}
}

// checkKnown validates v[name] with check when the configuration set it
// and it is known; an unknown value (nil, set in the configuration) waits
// for apply.
func checkKnown(v provider.Values, name string, check func(string) error) error {
	if s, ok := v[name].(string); ok {
		return check(s)
	}
	return nil
}

// missing reports whether the configuration leaves name out: not set, and
// not set to something still unknown.
func missing(v provider.Values, known map[string]bool, name string) bool {
	return v[name] == nil && !known[name]
}

// configured reports whether the configuration sets name, known or not.
func configured(v provider.Values, known map[string]bool, name string) bool {
	return v[name] != nil || known[name]
}
