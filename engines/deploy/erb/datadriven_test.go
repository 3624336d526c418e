package erb

import (
	"testing"

	"github.com/cockroachdb/datadriven"
	"go.yaml.in/yaml/v3"
)

// TestTemplates renders the templates of testdata/templates/* (datadriven: props
// sets the job's properties from YAML, link NAME sets a consumed link,
// render renders its input as templ.erb with spec fixed as below).
func TestTemplates(t *testing.T) {
	datadriven.Walk(t, "testdata/templates", func(t *testing.T, path string) {
		ctx := &Context{Spec: map[string]any{"address": "10.0.0.5", "ip": "10.0.0.5", "index": int64(0),
			"id": "6f1c0e2a", "name": "web", "deployment": "demo", "az": "z1", "bootstrap": true}, Links: map[string]Link{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "props":
				var m map[string]any
				if err := yaml.Unmarshal([]byte(d.Input), &m); err != nil {
					t.Fatalf("%s: %v", d.Pos, err)
				}
				ctx.Properties, _ = Normalize(m).(map[string]any)
				return ""
			case "link":
				var l struct {
					Address    string           `yaml:"address"`
					Instances  []map[string]any `yaml:"instances"`
					Properties map[string]any   `yaml:"properties"`
				}
				if err := yaml.Unmarshal([]byte(d.Input), &l); err != nil {
					t.Fatalf("%s: %v", d.Pos, err)
				}
				link := Link{Address: l.Address, Properties: Normalize(l.Properties).(map[string]any)}
				for _, in := range l.Instances {
					link.Instances = append(link.Instances, Normalize(in).(map[string]any))
				}
				ctx.Links[d.CmdArgs[0].Key] = link
				return ""
			case "render":
				out, err := Render("templ.erb", d.Input, ctx)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				return out
			}
			t.Fatalf("%s: unknown command %s", d.Pos, d.Cmd)
			return ""
		})
	})
}
