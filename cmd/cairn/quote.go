package main

import (
	"strings"
	"unicode"
)

// statement joins command-line words into one DSL statement, quoting the
// words the shell split off as single values so that the daemon's lexer sees
// them as one word again.
//
// Two words are never quoted because quoting could only break them: the first
// (it must be a verb, and `cairn "kv get a"` means the statement kv get a) and
// a lone "|" (the pipe to a chisel, which reaches us only when quoted for the
// shell). Everything after "--" is raw arguments: each is quoted as a value
// when it needs it, so the DSL gives back exactly the shell's words.
func statement(words []string) string {
	var b strings.Builder
	raw := false
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch {
		case raw:
			b.WriteString(rawWord(w))
		case i == 0 || w == "|":
			b.WriteString(w)
		case w == "--":
			raw = true
			b.WriteString(w)
		default:
			b.WriteString(quoteWord(w))
		}
	}
	return b.String()
}

// quoteWord returns w as one DSL word: unchanged when it needs no quotes,
// otherwise in double quotes with `\` and `"` escaped. For an option
// NAME=VALUE only the value is quoted, since a quoted word is always a value
// and would no longer bind as an option; an empty value is written "".
func quoteWord(w string) string {
	if name, value, ok := strings.Cut(w, "="); ok && isOptionName(name) {
		if value == "" || strings.ContainsFunc(value, needsQuote) {
			return name + "=" + quote(value)
		}
		return w
	}
	if w != "" && !strings.ContainsFunc(w, needsQuote) {
		return w
	}
	return quote(w)
}

// rawWord returns a word after "--" as one DSL word: unchanged when it
// needs no quotes, else double-quoted whole (NAME=VALUE is not an option
// there).
func rawWord(w string) string {
	if w != "" && !strings.ContainsFunc(w, needsQuote) {
		return w
	}
	return quote(w)
}

// quote double-quotes s, escaping backslashes and double quotes.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		if r == '\\' || r == '"' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// needsQuote reports whether r would end or change a bare word.
func needsQuote(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(`"';|#`, r)
}

// isOptionName reports whether s can be the NAME of a NAME=VALUE option
// (including bag keys such as var.NAME).
func isOptionName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (unicode.IsDigit(r) || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return true
}
