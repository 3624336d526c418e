package filter

import (
	"slices"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/dsl"
)

// nearest returns the candidate closest to s when it is close enough to be
// what the user meant, by the same rule the DSL uses for verbs and options.
func nearest(s string, candidates []string) (string, bool) {
	c := dsl.Nearest(s, candidates)
	return c, c != ""
}

// suggestField completes the message for ns.key, an unknown field of a typed
// namespace: the nearest field of that namespace, or the list of its fields.
func suggestField(ns, key string) string {
	keys := namespaces[ns]
	if k, ok := nearest(key, keys); ok {
		return "did you mean " + ns + "." + k + "?"
	}
	return ns + " has " + strings.Join(keys, ", ")
}

// suggestName completes the message for an undeclared identifier: a
// namespace used on its own is told its fields; anything else gets the
// nearest variable, namespace or function name.
func suggestName(name string) string {
	if keys, ok := namespaces[name]; ok {
		return name + " is not a value; use one of its fields: " + qualify(name, keys)
	}
	candidates := topLevelNames()
	candidates = append(candidates, functionNames()...)
	if c, ok := nearest(name, candidates); ok {
		if keys, isNS := namespaces[c]; isNS {
			return "did you mean " + c + "? its fields are " + qualify(c, keys)
		}
		return "did you mean " + c + "?"
	}
	return "known names are " + strings.Join(topLevelNames(), ", ")
}

// suggestQualified completes the message for ident.key where ident is not
// declared at all (`prc.name`): the nearest qualified field, if one is close.
func suggestQualified(ident, key string) (string, bool) {
	if c, ok := nearest(ident+"."+key, fieldNames); ok && strings.Contains(c, ".") {
		return "did you mean " + c + "?", true
	}
	return "", false
}

func qualify(ns string, keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = ns + "." + k
	}
	return strings.Join(q, ", ")
}

// functionNames lists the functions a user can call, sorted: CEL's
// operators (named _+_, @in, …) and presentFunc are left out.
var functionNames = sync.OnceValue(func() []string {
	env, err := newEnv()
	if err != nil {
		return nil
	}
	var out []string
	for name := range env.Functions() {
		if name != "" && (name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
})

// topLevelNames lists what can start an expression: plain variables and
// namespaces, sorted.
func topLevelNames() []string {
	var out []string
	for _, n := range fieldNames {
		if !strings.Contains(n, ".") {
			out = append(out, n)
		}
	}
	for ns := range namespaces {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}
