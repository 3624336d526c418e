package hygiene

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/engines"
	_ "github.com/cairnhq/cairn/engines/all" // every module cmd/cairn links
)

// kindShape is an event kind's syntax (docs/events.md).
var kindShape = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)+$`)

// notKinds are string literals of a reserved kind's shape that are not
// event kinds.
var notKinds = map[string]bool{
	"daemon.log": true, // the benchmark's log file
	"kv.store":   true, // the service the kv engine provides its *Store as
	// Services (engines.Services) named under a reserved prefix.
	"capture.sources":  true, // the capture engine's sources' counters
	"daemon.requests":  true, // the daemon's request counters
	"deploy.instances": true, // the deploy engine's instance names
	// Filter fields under the runtime engine's container. prefix.
	"container.id":    true,
	"container.name":  true,
	"container.image": true,
	"container.json":  true, // the file a container's record is kept in
	"network.json":    true, // the file a network of network create is kept in
}

// declaredKinds are the kinds cairn says it writes: every module's Kinds
// (engines.KindLister) and the daemon's own, each with who declares it.
func declaredKinds(mods []engines.Module) map[string]string {
	out := map[string]string{}
	for _, k := range daemon.Kinds() {
		out[k] = "the daemon"
	}
	for _, m := range mods {
		if kl, ok := m.(engines.KindLister); ok {
			for _, k := range kl.Kinds() {
				out[k] = "the " + m.Name() + " module"
			}
		}
	}
	return out
}

// reservedPrefixes are the kind prefixes only cairn writes: the modules'
// (engines.KindOwner) and the first words of the daemon's kinds.
func reservedPrefixes(mods []engines.Module) []string {
	var out []string
	for _, m := range mods {
		if ko, ok := m.(engines.KindOwner); ok {
			out = append(out, ko.KindPrefixes()...)
		}
	}
	for _, k := range daemon.Kinds() {
		first, _, _ := strings.Cut(k, ".")
		out = append(out, first+".")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestEventKindsDocumented requires docs/events.md to list every event kind
// cairn writes: every kind the modules and the daemon declare, and every
// kind the non-test sources (the benchmark tool and internal/ aside) name —
// as a Kind field or a kind constant, or as any literal under a reserved
// prefix — which must be declared too, so a module's Kinds stays whole.
func TestEventKindsDocumented(t *testing.T) {
	doc := string(readRepoFile(t, "docs/events.md"))
	mods := engines.New()
	declared := declaredKinds(mods)
	for _, k := range mapKeys(declared) {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("%s writes kind %s, which docs/events.md does not list", declared[k], k)
		}
		if owner, ok := engines.ReservedBy(mods, k); ok && declared[k] != "the "+owner+" module" {
			t.Errorf("%s declares kind %s, under a prefix the %s module owns", declared[k], k, owner)
		}
	}

	var files []sourceFile
	for _, name := range goFiles(t) {
		if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "cmd/cairnbench/") || strings.HasPrefix(name, "internal/") {
			continue
		}
		files = append(files, sourceFile{name, readRepoFile(t, name)})
	}
	found, err := scanKinds(files, reservedPrefixes(mods))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range mapKeys(found) {
		if notKinds[k] {
			continue
		}
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("%s emits kind %s, which docs/events.md does not list", found[k], k)
		}
		if _, ok := declared[k]; !ok {
			t.Errorf("%s emits kind %s, which no module's Kinds (nor daemon.Kinds) lists", found[k], k)
		}
	}
	if len(found) < 20 || len(declared) < 20 {
		t.Fatalf("found only %d kinds in the sources and %d declared: the scan is broken", len(found), len(declared))
	}
}

type sourceFile struct {
	name string
	src  []byte
}

// scanKinds finds the event kinds Go sources name, each with the first
// file naming it: a Kind field set in a composite literal (Kind: "x.y",
// Kind: SomeConst, Kind: pkg.Const) or by assignment (ev.Kind = …), a
// constant or variable whose name says kind (KindPut = "kv.put",
// DenyKind = …), and any string literal under a reserved prefix (a kind
// passed to a helper, s.send("capture.exec", …)). Constants resolve across
// the files by package name.
func scanKinds(files []sourceFile, reserved []string) (map[string]string, error) {
	fset := token.NewFileSet()
	parsed := make([]*ast.File, len(files))
	consts := map[string]string{} // "pkg.Name" -> string value
	for i, f := range files {
		af, err := parser.ParseFile(fset, f.name, f.src, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		parsed[i] = af
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for j, n := range vs.Names {
					if j < len(vs.Values) {
						if s, ok := stringLit(vs.Values[j]); ok {
							consts[af.Name.Name+"."+n.Name] = s
						}
					}
				}
			}
		}
	}
	found := map[string]string{}
	for i, af := range parsed {
		name, pkg := files[i].name, af.Name.Name
		add := func(e ast.Expr) {
			var s string
			switch e := e.(type) {
			case *ast.BasicLit:
				s, _ = stringLit(e)
			case *ast.Ident:
				s = consts[pkg+"."+e.Name]
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok {
					s = consts[x.Name+"."+e.Sel.Name]
				}
			}
			if kindShape.MatchString(s) {
				if _, seen := found[s]; !seen {
					found[s] = name
				}
			}
		}
		isKindName := func(e ast.Expr) bool {
			switch e := e.(type) {
			case *ast.Ident:
				return strings.Contains(strings.ToLower(e.Name), "kind")
			case *ast.SelectorExpr:
				return e.Sel.Name == "Kind"
			}
			return false
		}
		ast.Inspect(af, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Kind" {
					add(n.Value)
				}
			case *ast.AssignStmt:
				for j, lhs := range n.Lhs {
					if isKindName(lhs) && j < len(n.Rhs) {
						add(n.Rhs[j])
					}
				}
			case *ast.ValueSpec:
				for j, id := range n.Names {
					if isKindName(id) && j < len(n.Values) {
						add(n.Values[j])
					}
				}
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && slices.ContainsFunc(reserved, func(p string) bool { return strings.HasPrefix(s, p) }) {
					add(n)
				}
			}
			return true
		})
	}
	return found, nil
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestKindScan shows what the scan catches: kinds under any prefix given as
// a Kind field or a kind constant, and literals under a reserved prefix.
func TestKindScan(t *testing.T) {
	files := []sourceFile{
		{"a/a.go", []byte(`package a
const KindNote = "app.note"
const other = "app.other" // neither a kind's name nor a reserved prefix
var body = journal.Body{Kind: "build.start", Subject: "x"}
var q = journal.Query{Kind: "kv.*"} // a pattern, not a kind
func f(ev *journal.Event) {
	ev.Kind = b.Stop
	send("capture.exec", 1)
	_ = journal.Body{Kind: KindNote}
	_ = dsl.Option{Kind: dsl.Int}
}
`)},
		{"b/b.go", []byte(`package b
const (
	Stop      = "build.stop" // found through a.go's ev.Kind = b.Stop
	unrelated = "build.log"
)
`)},
	}
	got, err := scanKinds(files, []string{"capture."})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app.note", "build.start", "build.stop", "capture.exec"}
	if keys := mapKeys(got); !slices.Equal(keys, want) {
		t.Fatalf("scan found %v, want %v", keys, want)
	}
	if got["build.stop"] != "a/a.go" {
		t.Errorf("build.stop found in %s, want a/a.go (its use)", got["build.stop"])
	}
}
