package hygiene

import (
	"fmt"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// importClass orders an import path's group: the standard library, then
// other modules, then cairn's own packages.
func importClass(path string) int {
	switch {
	case path == module || strings.HasPrefix(path, module+"/"):
		return 2
	case !strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
		return 0
	}
	return 1
}

var classNames = [...]string{"standard library", "third-party", "cairn"}

// checkImports reports the misgrouped imports of one file: each blank-line
// separated group holds one class, the classes come in order, and no class
// is split over two groups.
func checkImports(fset *token.FileSet, name string, src []byte) ([]string, error) {
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	var problems []string
	lastLine, groupClass, lastClass := -1, -1, -1
	seen := map[int]bool{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		pos := fset.Position(imp.Pos())
		class := importClass(path)
		newGroup := lastLine >= 0 && pos.Line > lastLine+1
		if imp.Doc != nil {
			newGroup = lastLine >= 0 && fset.Position(imp.Doc.Pos()).Line > lastLine+1
		}
		switch {
		case lastLine < 0 || newGroup:
			if seen[class] {
				problems = append(problems, fmt.Sprintf("%s: %q: the %s imports are split over two groups", pos, path, classNames[class]))
			} else if class < lastClass {
				problems = append(problems, fmt.Sprintf("%s: %q: the %s group comes after the %s group", pos, path, classNames[class], classNames[lastClass]))
			}
			groupClass = class
		case class != groupClass:
			problems = append(problems, fmt.Sprintf("%s: %q (%s) is in a group of %s imports", pos, path, classNames[class], classNames[groupClass]))
		}
		seen[class] = true
		lastClass = max(lastClass, class)
		lastLine = pos.Line
	}
	return problems, nil
}

// TestImportGroups keeps every file's imports in three groups: standard
// library, third-party, cairn (goimports -local keeps order inside a group,
// but does not catch an import in the wrong group).
func TestImportGroups(t *testing.T) {
	fset := token.NewFileSet()
	for _, name := range goFiles(t) {
		problems, err := checkImports(fset, name, readRepoFile(t, name))
		if err != nil {
			t.Errorf("parse %s: %v", name, err)
			continue
		}
		for _, p := range problems {
			t.Error(p)
		}
	}
}

func TestCheckImports(t *testing.T) {
	for _, c := range []struct {
		src  string
		want int
	}{
		{"package p\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/sys/unix\"\n\n\t\"github.com/cairnhq/cairn/dsl\"\n)\n", 0},
		{"package p\nimport (\n\t\"fmt\"\n\t\"github.com/cairnhq/cairn/dsl\"\n)\n", 1},
		{"package p\nimport (\n\t\"github.com/cairnhq/cairn/dsl\"\n\n\t\"fmt\"\n)\n", 1},
		{"package p\nimport (\n\t\"fmt\"\n\n\t\"github.com/cairnhq/cairn/dsl\"\n\n\t\"golang.org/x/sys/unix\"\n\n\t\"github.com/cairnhq/cairn/journal\"\n)\n", 2},
		{"package p\nimport \"fmt\"\n", 0},
	} {
		got, err := checkImports(token.NewFileSet(), "x.go", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("%q: %d problems %q, want %d", c.src, len(got), got, c.want)
		}
	}
}
