//go:build !thin

package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/engines"
)

var updateDocs = flag.Bool("update", false, "rewrite generated documentation")

const (
	verbsBegin = "<!-- verbs:begin -->\n"
	verbsEnd   = "<!-- verbs:end -->"
)

// TestDocsVerbs keeps docs/dsl.md's verb reference equal to the verb table.
func TestDocsVerbs(t *testing.T) {
	const path = "../../docs/dsl.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, verbsBegin), strings.Index(text, verbsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q … %q markers", path, verbsBegin, verbsEnd)
	}
	// The table of a daemon with every engine this binary links in.
	table := daemon.VerbTable(engines.New())
	var b strings.Builder
	for _, sp := range table.Specs() {
		help, err := table.HelpVerb(sp.Verb)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n### " + sp.Verb + "\n\n```\n" + strings.TrimRight(help, "\n") + "\n```\n\n")
	}
	want := text[:i+len(verbsBegin)] + b.String() + text[j:]
	if want == text {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's verb reference is out of date; run go test ./cmd/cairn -run TestDocsVerbs -update", path)
}
