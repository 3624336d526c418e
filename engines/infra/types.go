package infra

import (
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
)

func index() *typeIndex {
	typesOnce.Do(func() {
		types = typeIndex{resources: map[string]provider.Resource{}, data: map[string]provider.DataSource{}, owner: map[string]provider.Provider{}}
		for _, p := range provider.All() {
			for n, r := range p.Resources() {
				types.resources[n] = r
				types.owner[n] = p
			}
			for n, d := range p.DataSources() {
				types.data[n] = d
				if _, ok := types.owner[n]; !ok {
					types.owner[n] = p
				}
			}
		}
	})
	return &types
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
