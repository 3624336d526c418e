package metrics

import "testing"

// FuzzStatsdLine: any datagram line is parsed or refused, never a panic;
// a metric that parses has a name and a type.
func FuzzStatsdLine(f *testing.F) {
	for _, s := range []string{"page.views:1|c", "temp:-3.5|g|#env:prod,host", "lat:320|ms|@0.1", "h:1:2:3|h|#a:b", "u:x|s",
		"_e{5,4}:title|text|p:low|t:warning|#a:b", "_sc|db|2|m:down", "x:1|c|@", "_e{999,1}:a|b", ":|", "a:1|c|#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, ev, sc, err := ParseStatsdLine(line)
		if err != nil {
			return
		}
		if m != nil && (m.Name == "" || m.Type == "") {
			t.Fatalf("%q: a metric without a name or type: %+v", line, m)
		}
		if m == nil && ev == nil && sc == nil {
			t.Fatalf("%q: no error and nothing parsed", line)
		}
	})
}
