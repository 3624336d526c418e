package infra

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// BenchmarkNoOpPlan1000 is the pure planner on 1,000 file instances that
// state and reality hold as configured: a no-op plan, no provider called.
func BenchmarkNoOpPlan1000(b *testing.B) {
	cfg, diags := config.Parse("/cfg", map[string]string{"main.hcl": `
resource "file" "f" {
  count   = 1000
  path    = "/r/f${count.index}"
  content = "c${count.index}"
}`})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	state := map[string]*ResourceState{}
	real := Reality{Objects: map[string]provider.Values{}}
	for i := range 1000 {
		a := fmt.Sprintf("file.f[%d]", i)
		attrs := map[string]any{"path": fmt.Sprintf("/r/f%d", i), "content": fmt.Sprintf("c%d", i), "mode": "0644", "owner": "root:root", "sha256": "x"}
		state[a] = &ResourceState{Addr: a, Type: "file", ID: attrs["path"].(string), Attrs: attrs, Config: []string{"path", "content", "mode"}}
		real.Objects[a] = provider.Values(attrs)
	}
	b.ResetTimer()
	for b.Loop() {
		p, err := plan(cfg, nil, state, real, planOptions{Workspace: "w", Dir: "/cfg"})
		if err != nil {
			b.Fatal(err)
		}
		if p.Summary != (Summary{}) {
			b.Fatalf("not a no-op plan: %+v", p.Summary)
		}
		_ = planJSON(p)
	}
}
