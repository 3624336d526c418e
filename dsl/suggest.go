package dsl

import (
	"strings"
	"unicode/utf8"
)

// Nearest returns the candidate closest to word by optimal-string-alignment
// distance (Damerau–Levenshtein without repeated edits of a substring), ignoring
// case, or "" when none is close: at most two edits, and at most half the
// candidate's length, so a short word is not "corrected" into an unrelated one.
// Ties go to the earlier candidate.
func Nearest(word string, candidates []string) string {
	w := []rune(strings.ToLower(word))
	best, bestD := "", 3
	for _, c := range candidates {
		n := utf8.RuneCountInString(c)
		limit := min(2, n/2)
		if d := len(w) - n; d > limit || -d > limit {
			continue // also keeps the cost bounded for huge words
		}
		d := distance(w, []rune(strings.ToLower(c)))
		if d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b.
func distance(a, b []rune) int {
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
