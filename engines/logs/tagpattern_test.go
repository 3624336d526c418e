package logs

import "testing"

// TestTagPattern pins Fluentd's match semantics (its docs' "How do the
// match patterns work?" examples).
func TestTagPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"a.*", []string{"a.b"}, []string{"a", "a.b.c", "b.a"}},
		{"a.**", []string{"a", "a.b", "a.b.c"}, []string{"b.a", "ab"}},
		{"**.c", []string{"c", "a.c", "a.b.c"}, []string{"a.cc", "c.d"}},
		{"a.{b,c}", []string{"a.b", "a.c"}, []string{"a.d", "a.b.c"}},
		{"a.{b,c.**}", []string{"a.b", "a.c", "a.c.d.e"}, []string{"a.b.c"}},
		{"a b", []string{"a", "b"}, []string{"c", "a.b"}},
		{"**", []string{"a", "a.b.c"}, nil},
		{"app.web", []string{"app.web"}, []string{"appxweb", "app.web.1"}},
	} {
		p, err := ParseTagPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		for _, tag := range tc.yes {
			if !p.Match(tag) {
				t.Errorf("%q does not match %q", tc.pattern, tag)
			}
		}
		for _, tag := range tc.no {
			if p.Match(tag) {
				t.Errorf("%q matches %q", tc.pattern, tag)
			}
		}
	}
	for _, bad := range []string{"a.{b", "a}", "", "a,b"} {
		if _, err := ParseTagPattern(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
