package erb

import "testing"

// FuzzRender: no template, however broken, panics the evaluator; each
// renders or is an *Error.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		`<%= p("a.b", 1) %>`, `<% if_p("a") do |x| %><%= x %><% end.else do %>no<% end %>`,
		`<% [1, 2].each_with_index do |x, i| %><%= x + i %><% end %>`, `<%= link("db").instances.map(&:address).join(",") %>`,
		`<%= "a#{1 + 2}b" %>`, `<%- if true -%>x<%- end -%>`, `<%= {"a" => [1, nil]}.to_json %>`, `<%= (1 ? 2 : 3).round %>`,
		`<% x = [3, 1].sort; y = x.first %><%= y %>`, `<%= p("a").find { |v| v > 1 } %>`,
	} {
		f.Add(s)
	}
	ctx := &Context{Properties: map[string]any{"a": []any{int64(1), int64(2)}, "s": "str", "h": map[string]any{"k": "v"}},
		Spec:  map[string]any{"address": "10.0.0.1", "index": int64(0)},
		Links: map[string]Link{"db": {Address: "10.0.0.2", Instances: []map[string]any{{"address": "10.0.0.2"}}, Properties: map[string]any{"port": int64(1)}}}}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Render("f.erb", src, ctx)
		if err == nil {
			return
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("%q: an error that names no template line: %v", src, err)
		}
	})
}
