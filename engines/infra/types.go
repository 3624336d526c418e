package infra

import (
	"fmt"
	"sort"
	"sync"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// typeIndex maps resource and data source type names to their providers,
// built once from the registered providers.
type typeIndex struct {
	resources map[string]provider.Resource
	data      map[string]provider.DataSource
	owner     map[string]provider.Provider // resource or data type -> provider
}

var (
	typesOnce sync.Once
	types     typeIndex
	typesErr  error
)

// index is the type index of the linked providers. A name two providers
// claim makes it empty, and the module refuses to start (checkTypes).
func index() *typeIndex {
	typesOnce.Do(func() { types, typesErr = buildIndex(provider.All()) })
	return &types
}

// checkTypes reports a resource or data source type name that two linked
// providers both declare: which one a configuration meant cannot be
// decided, so the daemon does not start.
func checkTypes() error {
	index()
	return typesErr
}

// buildIndex indexes the providers' types, refusing a name two of them
// declare (a resource and a data source of one provider may share it).
func buildIndex(all map[string]provider.Provider) (typeIndex, error) {
	ix := typeIndex{resources: map[string]provider.Resource{}, data: map[string]provider.DataSource{}, owner: map[string]provider.Provider{}}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	claim := func(typ, what string, p provider.Provider) error {
		if prev, ok := ix.owner[typ]; ok && prev.Name() != p.Name() {
			return fmt.Errorf("%s type %q is declared by both the %s and the %s provider; rename one", what, typ, prev.Name(), p.Name())
		}
		ix.owner[typ] = p
		return nil
	}
	for _, n := range names {
		p := all[n]
		for _, t := range sortedKeys(p.Resources()) {
			if err := claim(t, "resource", p); err != nil {
				return typeIndex{}, err
			}
			ix.resources[t] = p.Resources()[t]
		}
		for _, t := range sortedKeys(p.DataSources()) {
			if err := claim(t, "data source", p); err != nil {
				return typeIndex{}, err
			}
			ix.data[t] = p.DataSources()[t]
		}
	}
	return ix, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func resourceType(t string) provider.Resource { return index().resources[t] }

func dataType(t string) provider.DataSource { return index().data[t] }

func providerOf(t string) provider.Provider { return index().owner[t] }

// resourceTypeNames lists the known resource types, sorted.
func resourceTypeNames() []string {
	var out []string
	for n := range index().resources {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func dataTypeNames() []string {
	var out []string
	for n := range index().data {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// privateAttrs is the set of attributes of v, an object of type typ, that
// the journal keeps as digests because the object says it is private
// (provider.Private: a file other users cannot read).
func privateAttrs(typ string, v provider.Values) map[string]bool {
	if v == nil {
		return nil
	}
	var p provider.Private
	if r, ok := resourceType(typ).(provider.Private); ok {
		p = r
	} else if d, ok := dataType(typ).(provider.Private); ok {
		p = d
	}
	if p == nil {
		return nil
	}
	out := map[string]bool{}
	for _, a := range p.PrivateAttrs(v) {
		out[a] = true
	}
	return out
}
