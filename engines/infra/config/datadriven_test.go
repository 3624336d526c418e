package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cairnhq/cairn/engines/infra/config"
)

// TestDataDriven runs testdata/*. The input of each command is a set of
// files, each introduced by a line "-- NAME --", written to a temporary
// directory:
//
//   - `load` loads the directory and prints what it declares, what each
//     local, output and meta-argument refers to, and every diagnostic of
//     Load and Refs;
//   - `vars [var-file=NAME]... [var.NAME=VALUE]...` loads the directory and
//     prints VariableValues for those inputs.
//
// Regenerate the expectations with -rewrite.
func TestDataDriven(t *testing.T) {
	// Only the files at the top of testdata: testdata/fuzz holds Go's corpus.
	paths, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				dir := writeDir(t, splitFiles(t, td.Input))
				switch td.Cmd {
				case "load":
					return runLoad(dir)
				case "vars":
					return runVars(t, dir, td.CmdArgs)
				}
				t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
				return ""
			})
		})
	}
}

// splitFiles splits input at lines "-- NAME --" into files.
func splitFiles(t *testing.T, input string) map[string]string {
	files := map[string]string{}
	name := ""
	for line := range strings.Lines(input) {
		if h := strings.TrimSpace(line); strings.HasPrefix(h, "-- ") && strings.HasSuffix(h, " --") && len(h) > 6 {
			name = strings.TrimSpace(h[3 : len(h)-3])
			files[name] = ""
			continue
		}
		if name == "" {
			if strings.TrimSpace(line) != "" {
				t.Fatalf("input starts before the first -- NAME -- line: %q", line)
			}
			continue
		}
		files[name] += line
	}
	return files
}

func runLoad(dir string) string {
	c, diags := config.Load(dir)
	var b strings.Builder
	if c != nil {
		for _, name := range sortedKeys(c.Variables) {
			v := c.Variables[name]
			fmt.Fprintf(&b, "variable %s: %s", name, typeString(v.Type))
			if v.Default != cty.NilVal {
				fmt.Fprintf(&b, " = %s", valueString(v.Default))
			}
			if v.Sensitive {
				b.WriteString(" sensitive")
			}
			if v.Description != "" {
				fmt.Fprintf(&b, " %q", v.Description)
			}
			b.WriteByte('\n')
		}
		var refDiags hcl.Diagnostics
		vars := func(e hcl.Expression) []hcl.Traversal {
			if e == nil { // after an error
				return nil
			}
			return e.Variables()
		}
		refs := func(trs []hcl.Traversal) string {
			addrs, d := c.Refs(trs)
			refDiags = append(refDiags, d...)
			if len(addrs) == 0 {
				return "(none)"
			}
			return strings.Join(addrs, ", ")
		}
		for _, name := range sortedKeys(c.Locals) {
			fmt.Fprintf(&b, "local %s -> %s\n", name, refs(vars(c.Locals[name].Expr)))
		}
		for _, r := range c.SortedResources() {
			fmt.Fprintf(&b, "%s %s", map[config.Mode]string{config.Managed: "resource", config.Data: "data source"}[r.Mode], r.Addr())
			if r.Count != nil {
				fmt.Fprintf(&b, "; count -> %s", refs(r.Count.Variables()))
			}
			if r.ForEach != nil {
				fmt.Fprintf(&b, "; for_each -> %s", refs(r.ForEach.Variables()))
			}
			if r.DependsOn != nil {
				fmt.Fprintf(&b, "; depends_on [%s] -> %s", strings.Join(traversalStrings(r.DependsOn), ", "), refs(r.DependsOn))
			}
			if lc := r.Lifecycle; lc.CreateBeforeDestroy || lc.PreventDestroy || lc.IgnoreChanges != nil {
				b.WriteString("; lifecycle")
				if lc.CreateBeforeDestroy {
					b.WriteString(" create_before_destroy")
				}
				if lc.PreventDestroy {
					b.WriteString(" prevent_destroy")
				}
				if lc.IgnoreChanges != nil {
					fmt.Fprintf(&b, " ignore_changes=[%s]", strings.Join(lc.IgnoreChanges, ", "))
				}
			}
			b.WriteByte('\n')
		}
		for _, name := range sortedKeys(c.Outputs) {
			o := c.Outputs[name]
			fmt.Fprintf(&b, "output %s -> %s", name, refs(vars(o.Expr)))
			if o.DependsOn != nil {
				fmt.Fprintf(&b, "; depends_on -> %s", refs(o.DependsOn))
			}
			if o.Sensitive {
				b.WriteString(" sensitive")
			}
			b.WriteByte('\n')
		}
		diags = append(diags, refDiags...)
	}
	if len(diags) > 0 {
		b.WriteString(format(diags, dir) + "\n")
	}
	if b.Len() == 0 {
		return "(empty)\n"
	}
	return b.String()
}

func runVars(t *testing.T, dir string, args []datadriven.CmdArg) string {
	c, diags := config.Load(dir)
	if diags.HasErrors() {
		return format(diags, dir) + "\n"
	}
	var in config.Inputs
	for _, a := range args {
		switch {
		case a.Key == "var-file":
			for _, v := range a.Vals {
				in.Files = append(in.Files, filepath.Join(dir, v))
			}
		case strings.HasPrefix(a.Key, "var."):
			if in.Values == nil {
				in.Values = map[string]string{}
			}
			in.Values[strings.TrimPrefix(a.Key, "var.")] = strings.Join(a.Vals, ",")
		default:
			t.Fatalf("vars: unknown argument %s", a.Key)
		}
	}
	vals, diags := c.VariableValues(in)
	// VariableValues reports in map order (see
	// TestVariableValuesDiagnosticsOrder): sort the lines to compare them.
	lines := strings.Split(format(diags, dir), "\n")
	slices.Sort(lines)
	var b strings.Builder
	for _, name := range sortedKeys(vals) {
		v := vals[name]
		fmt.Fprintf(&b, "var.%s = %s (%s)", name, valueString(v), typeString(v.Type()))
		if v.HasMark(config.Sensitive) {
			b.WriteString(" sensitive")
		}
		b.WriteByte('\n')
	}
	if len(diags) > 0 {
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	if b.Len() == 0 {
		return "(empty)\n"
	}
	return b.String()
}

func typeString(ty cty.Type) string {
	return typeexpr.TypeString(ty)
}

// valueString renders v as JSON, without its marks.
func valueString(v cty.Value) string {
	v, _ = v.UnmarkDeep()
	js, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(js)
}
