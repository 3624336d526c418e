package filter

import (
	"slices"
	"strings"
	"sync"
)

// nearest returns the candidate closest to s, if it is close enough to be
// what the user meant: within one edit for short names, up to three for long
// ones. Ties go to the earlier candidate.
func nearest(s string, candidates []string) (string, bool) {
	limit := min(1+len(s)/4, 3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best, bestDist <= limit
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent letters each cost
// one, so "nmae" is one edit from "name".
func editDistance(a, b string) int {
	// Three rows suffice: the transposition looks two rows back.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
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
