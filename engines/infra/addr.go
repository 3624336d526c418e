package infra

import "strings"

// Addresses are Terraform's: [module.NAME[KEY].]...[data.]TYPE.NAME[KEY],
// with KEY a number or a quoted string that may hold dots and brackets.

// addrParts splits an address at the dots outside brackets.
func addrParts(a string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(a); i++ {
		ch := a[i]
		switch {
		case quoted && ch == '\\':
			i++
		case ch == '"':
			quoted = !quoted
		case quoted:
		case ch == '[':
			depth++
		case ch == ']':
			depth--
		case ch == '.' && depth == 0:
			parts = append(parts, a[start:i])
			start = i + 1
		}
	}
	return append(parts, a[start:])
}

// splitAddr splits an instance address into its module instance and the
// rest: module.web["a"].file.f[0] -> module.web["a"], file.f[0].
func splitAddr(a string) (mod, rest string) {
	parts := addrParts(a)
	i := 0
	for i+1 < len(parts) && parts[i] == "module" {
		i += 2
	}
	return strings.Join(parts[:i], "."), strings.Join(parts[i:], ".")
}

// staticAddr cuts every instance key off an address: the node it is an
// instance of (module.web.file.f for module.web["a"].file.f[0]).
func staticAddr(a string) string {
	parts := addrParts(a)
	for i, p := range parts {
		if j := strings.IndexByte(p, '['); j >= 0 {
			parts[i] = p[:j]
		}
	}
	return strings.Join(parts, ".")
}

// addrUnder reports whether a is the address pat or lies under it: an
// instance of it (pat file.f, a file.f[0]) or in the module it names (pat
// module.web, a module.web["a"].file.f).
func addrUnder(a, pat string) bool {
	if a == pat {
		return true
	}
	if !strings.HasPrefix(a, pat) {
		return false
	}
	switch a[len(pat)] {
	case '.':
		return strings.HasPrefix(pat, "module.") && isModulePath(pat)
	case '[':
		return !strings.HasSuffix(pat, "]")
	}
	return false
}

// isModulePath reports whether an address names a module (instance):
// module.a, module.a["x"].module.b.
func isModulePath(a string) bool {
	mod, rest := splitAddr(a)
	return mod != "" && rest == ""
}
