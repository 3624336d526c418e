package fileprovider

import (
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// TestSchemas keeps the schemas coherent: path names the object, so it is
// required and forces replacement; defaults are valid values.
func TestSchemas(t *testing.T) {
	p := registered(t)
	if p.Name() != "file" {
		t.Errorf("Name = %q", p.Name())
	}
	for typ, r := range p.Resources() {
		sc := r.Schema()
		path := sc.Attributes["path"]
		if path == nil || !path.Required || !path.ForceNew {
			t.Errorf("%s: path must be required and force new: %+v", typ, path)
		}
		for _, name := range sc.Names() {
			a := sc.Attributes[name]
			if a.Computed && a.Default != nil {
				t.Errorf("%s.%s: computed with a default", typ, name)
			}
			if a.Default != nil {
				v := provider.Values{"path": "/x", name: a.Default}
				if err := r.Validate(v, nil); err != nil {
					t.Errorf("%s.%s: default %v is invalid: %v", typ, name, a.Default, err)
				}
			}
		}
	}
	for _, name := range []string{"content", "sha256", "mode", "owner"} {
		if a := p.DataSources()["file"].Schema().Attributes[name]; a == nil || !a.Computed {
			t.Errorf("data source file: %s should be computed", name)
		}
	}
}
