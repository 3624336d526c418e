package infra

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// stubProvider declares types and nothing else: the index only reads names.
type stubProvider struct {
	name      string
	resources []string
	data      []string
}

func (p stubProvider) Name() string { return p.name }
func (p stubProvider) Resources() map[string]provider.Resource {
	m := map[string]provider.Resource{}
	for _, r := range p.resources {
		m[r] = nil
	}
	return m
}
func (p stubProvider) DataSources() map[string]provider.DataSource {
	m := map[string]provider.DataSource{}
	for _, d := range p.data {
		m[d] = nil
	}
	return m
}
func (stubProvider) Open(context.Context, provider.Env) (provider.Session, error) { return nil, nil }

// TestDuplicateTypeNames: two providers declaring one type name is an
// error naming both, whatever the map order; a provider's own resource and
// data source may share a name.
func TestDuplicateTypeNames(t *testing.T) {
	for range 20 { // map iteration order varies; the answer must not
		_, err := buildIndex(map[string]provider.Provider{
			"file":  stubProvider{name: "file", resources: []string{"file", "directory"}, data: []string{"file"}},
			"other": stubProvider{name: "other", resources: []string{"file"}},
		})
		if err == nil || !strings.Contains(err.Error(), `resource type "file" is declared by both the file and the other provider`) {
			t.Fatalf("duplicate resource type: %v", err)
		}
	}
	ix, err := buildIndex(map[string]provider.Provider{"file": stubProvider{name: "file", resources: []string{"file"}, data: []string{"file"}}})
	if err != nil || ix.owner["file"].Name() != "file" {
		t.Fatalf("a provider's resource and data source of one name: %v", err)
	}
	if err := checkTypes(); err != nil {
		t.Fatalf("the linked providers clash: %v", err)
	}
}
