package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// Ref returns the configuration object a traversal refers to: "var.X",
// "local.X", "TYPE.NAME", "data.TYPE.NAME". ok is false for references that
// name no object (count.index, each.key, path.module, self).
func Ref(tr hcl.Traversal) (addr string, ok bool, diag *hcl.Diagnostic) {
	attr := func(i int) (string, bool) {
		if len(tr) <= i {
			return "", false
		}
		a, ok := tr[i].(hcl.TraverseAttr)
		return a.Name, ok
	}
	root := tr.RootName()
	bad := func(what string) *hcl.Diagnostic {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference",
			Detail: what, Subject: tr.SourceRange().Ptr()}
	}
	switch root {
	case "count", "each", "path", "self", "terraform":
		return "", false, nil
	case "var", "local":
		n, ok := attr(1)
		if !ok {
			return "", false, bad(fmt.Sprintf("A reference to %s must be followed by a name, as in %s.NAME.", root, root))
		}
		return root + "." + n, true, nil
	case "module":
		n, ok := attr(1)
		if !ok {
			return "", false, bad("A reference to a module must be module.NAME.")
		}
		return "module." + n, true, nil
	case "data":
		t, ok1 := attr(1)
		n, ok2 := attr(2)
		if !ok1 || !ok2 {
			return "", false, bad("A reference to a data source must be data.TYPE.NAME.")
		}
		return "data." + t + "." + n, true, nil
	}
	n, ok := attr(1)
	if !ok {
		return "", false, bad(fmt.Sprintf("A reference to a resource type must be followed by the resource's name, as in %s.NAME.", root))
	}
	return root + "." + n, true, nil
}

// Exists reports whether addr (as Ref returns it) is declared.
func (c *Config) Exists(addr string) bool {
	switch {
	case len(addr) > 4 && addr[:4] == "var.":
		_, ok := c.Variables[addr[4:]]
		return ok
	case len(addr) > 6 && addr[:6] == "local.":
		_, ok := c.Locals[addr[6:]]
		return ok
	case len(addr) > 7 && addr[:7] == "module.":
		_, ok := c.ModuleCalls[addr[7:]]
		return ok
	}
	_, ok := c.Resources[addr]
	return ok
}

// Refs returns the objects the traversals refer to, deduplicated in order,
// with a diagnostic for each reference to something undeclared.
func (c *Config) Refs(trs []hcl.Traversal) ([]string, hcl.Diagnostics) {
	var out []string
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for _, tr := range trs {
		addr, ok, d := Ref(tr)
		if d != nil {
			diags = append(diags, d)
			continue
		}
		if !ok || seen[addr] {
			continue
		}
		if !c.Exists(addr) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to undeclared " + kindOf(addr),
				Detail: fmt.Sprintf("%s is not declared in this configuration; declare it, or fix the name.", addr), Subject: tr.SourceRange().Ptr()})
			continue
		}
		seen[addr] = true
		out = append(out, addr)
	}
	return out, diags
}

func kindOf(addr string) string {
	switch {
	case len(addr) > 4 && addr[:4] == "var.":
		return "input variable"
	case len(addr) > 6 && addr[:6] == "local.":
		return "local value"
	case len(addr) > 5 && addr[:5] == "data.":
		return "data source"
	case len(addr) > 7 && addr[:7] == "module.":
		return "module"
	}
	return "resource"
}
