package hygiene

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// kindPrefixes are the first words of the kinds cairn itself writes: the
// engines' and the daemon's (emit refuses them to users).
var kindPrefixes = []string{"kv", "lease", "infra", "capture", "daemon", "journal", "auth", "event"}

// kindLiteral finds a string literal that is such a kind.
var kindLiteral = regexp.MustCompile(`"((?:` + strings.Join(kindPrefixes, "|") + `)\.[a-z0-9_]+)"`)

// notKinds are literals of that shape that are not event kinds.
var notKinds = map[string]bool{
	"daemon.log": true, // the benchmark's log file
	"kv.store":   true, // the service the kv engine provides its *Store as
}

// TestEventKindsDocumented requires docs/events.md to list every event kind
// the code emits: every string literal of a reserved kind's shape in the
// non-test sources (the benchmark tool aside) must appear in it as `kind`.
func TestEventKindsDocumented(t *testing.T) {
	doc := string(readRepoFile(t, "docs/events.md"))
	var found []string
	for _, name := range goFiles(t) {
		if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "cmd/cairnbench/") || strings.HasPrefix(name, "internal/") {
			continue
		}
		for _, m := range kindLiteral.FindAllStringSubmatch(string(readRepoFile(t, name)), -1) {
			if k := m[1]; !notKinds[k] && !slices.Contains(found, k) {
				found = append(found, k)
				if !strings.Contains(doc, "`"+k+"`") {
					t.Errorf("%s emits kind %s, which docs/events.md does not list", name, k)
				}
			}
		}
	}
	if len(found) < 20 {
		t.Fatalf("found only %d kinds in the sources (%v): the scan is broken", len(found), found)
	}
}

func TestKindLiteralScan(t *testing.T) {
	src := `Kind: "kv.put", x := "app.note"; const k = "capture.exec"; "infra.hcl"`
	var got []string
	for _, m := range kindLiteral.FindAllStringSubmatch(src, -1) {
		got = append(got, m[1])
	}
	if !slices.Equal(got, []string{"kv.put", "capture.exec", "infra.hcl"}) {
		t.Fatalf("scan found %v", got)
	}
}
