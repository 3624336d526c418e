package metrics

import (
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestParseStatsdLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"page.views:1|c", "c page.views [1] rate=1 tags=[]"},
		{"page.views:2|c|@0.5|#env:prod,web", "c page.views [2] rate=0.5 tags=[{env prod} {web }]"},
		{"temp:-3|g", "g temp [-3] rate=1 tags=[] delta"},
		{"lat:1:2:3|h|#a:b", "h lat [1 2 3] rate=1 tags=[{a b}]"},
		{"users:alice|s", "s users [] rate=1 tags=[] set=[alice]"},
		{"db.query:250|ms|T1700000000|c:abc", "ms db.query [250] rate=1 tags=[]"},
		{"_e{5,4}:title|text|p:low|t:error|#svc:web", "event title text low error [{svc web}]"},
		{"_sc|db.up|2|h:host1|#env:prod|m:down | really", "sc db.up 2 host1 down | really [{env prod}]"},
		{"nocolon|c", "error"},
		{"x:1|q", "error"},
		{"x:abc|c", "error"},
		{"x:1|c|@2", "error"},
		{"_e{10,4}:title|text", "error"},
		{"_sc|db|7", "error"},
	} {
		m, e, sc, err := ParseStatsdLine(tc.in)
		var got string
		switch {
		case err != nil:
			got = "error"
		case m != nil:
			got = strings.TrimSpace(strings.Join([]string{m.Type, m.Name, fmtFloats(m.Values), "rate=" + formatFloat(m.Rate), "tags=" + fmtTags(m.Tags), setStr(m.Set), deltaStr(m.GaugeDelta)}, " "))
		case e != nil:
			got = strings.Join([]string{"event", e.Title, e.Text, e.Priority, e.AlertType, fmtTags(e.Tags)}, " ")
		case sc != nil:
			got = strings.Join([]string{"sc", sc.Name, formatFloat(float64(sc.Status)), sc.Host, sc.Message, fmtTags(sc.Tags)}, " ")
		}
		got = strings.Join(strings.Fields(got), " ")
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func fmtFloats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = formatFloat(f)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func fmtTags(tags []StatsdTag) string {
	s := make([]string, len(tags))
	for i, t := range tags {
		s[i] = "{" + t.Key + " " + t.Value + "}"
	}
	return "[" + strings.Join(s, " ") + "]"
}

func setStr(s []string) string {
	if s == nil {
		return ""
	}
	return "set=[" + strings.Join(s, " ") + "]"
}

func deltaStr(b bool) string {
	if b {
		return "delta"
	}
	return ""
}

// TestStatsdAgg: sample rates scale counters and histograms, gauges take
// deltas, sets count distinct members per flush, tags become labels, and
// the series limit and type conflicts drop messages.
func TestStatsdAgg(t *testing.T) {
	a := newStatsdAgg(6)
	add := func(line string) string {
		m, _, _, err := ParseStatsdLine(line)
		if err != nil {
			t.Fatal(err)
		}
		_, reason := a.Add(m)
		return reason
	}
	for _, l := range []string{"hits:1|c|@0.5|#env:prod", "hits:1|c|@0.5|#env:prod", "temp:20|g", "temp:+5|g", "size:100:300|h|#env:prod", "q:250|ms", "u:alice|s", "u:bob|s", "u:alice|s"} {
		if r := add(l); r != "" {
			t.Fatalf("%s dropped: %s", l, r)
		}
	}
	if r := add("temp:1|c"); r != "" {
		t.Fatalf("temp as a count goes to temp_total: dropped %s", r)
	}
	if r := add("temp:1|s"); r != "type_conflict" {
		t.Fatalf("temp as a set: %q, want type_conflict", r)
	}
	if r := add("new:1|g"); r != "series_limit" {
		t.Fatalf("a 7th series with a limit of 6: %q, want series_limit", r)
	}
	a.Flush()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range FamilySamples(mfs, nil) {
		got[s.Labels.String()] = s.Value
	}
	for k, want := range map[string]float64{
		`{__name__="hits_total", env="prod"}`: 4,
		`{__name__="temp"}`:                   25,
		`{__name__="size_count", env="prod"}`: 2,
		`{__name__="size_sum", env="prod"}`:   400,
		`{__name__="q_sum"}`:                  0.25,
		`{__name__="q_bucket", le="0.25"}`:    1,
		`{__name__="q_bucket", le="0.1"}`:     0,
		`{__name__="u"}`:                      2,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

func TestUDPDrops(t *testing.T) {
	table := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0100007F:1FBD 00000000:0000 07 00000000 00000000 00:00000000 00000000     0        0 12345 2 0000000000000000 0
  101: 0100007F:A3F1 00000000:0000 07 00000000 00000000 00:00000000 00000000     0        0 12346 2 0000000000000000 381
`)
	n, ok := udpDrops(table, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0xA3F1})
	if !ok || n != 381 {
		t.Errorf("drops %d, %v", n, ok)
	}
	if _, ok := udpDrops(table, &net.UDPAddr{Port: 9}); ok {
		t.Error("found a socket that is not there")
	}
}
