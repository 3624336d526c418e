package dsl

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tokWord tokKind = iota
	tokPipe
)

// token is one lexed word or pipe sign of a statement.
type token struct {
	kind        tokKind
	pos         Pos // first character
	end         Pos // just after the last character
	start, stop int // byte offsets in the source
	text        string
	quoted      bool // some part of the word was written in quotes
	lead        bool // the word starts with a quote
	inner       Pos  // with lead: the first character inside the quotes

	// key is the NAME of a word written NAME=VALUE with a bare NAME, else "".
	key       string
	val       string
	valQuoted bool
	valPos    Pos
}

// word returns the token as a Word value.
func (t token) word() Word {
	return Word{Text: t.text, Quoted: t.quoted, Pos: t.pos}
}

// bare reports whether the token is the unquoted word s.
func (t token) bare(s string) bool {
	return t.kind == tokWord && !t.quoted && t.text == s
}

// lexer splits source text into statements of tokens, tracking line and column.
type lexer struct {
	src       string
	off       int
	line, col int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

// peek returns the next rune and its width; width 0 means the end of input.
// An invalid byte is returned as utf8.RuneError of width 1 and counts as one column.
func (l *lexer) peek() (rune, int) {
	if l.off >= len(l.src) {
		return 0, 0
	}
	if c := l.src[l.off]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(l.src[l.off:])
}

func (l *lexer) advance(r rune, n int) {
	l.off += n
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
}

func isSpace(r rune) bool { return r != '\n' && unicode.IsSpace(r) }

// statement appends to toks the tokens of the next statement, up to a
// newline, a ';' or the end of input. more reports whether input is left
// after it.
func (l *lexer) statement(toks []token) (_ []token, more bool, err error) {
	for {
		r, n := l.peek()
		switch {
		case n == 0:
			return toks, false, nil
		case r == '\n' || r == ';':
			l.advance(r, n)
			return toks, true, nil
		case isSpace(r):
			l.advance(r, n)
		case r == '#':
			for n != 0 && r != '\n' {
				l.advance(r, n)
				r, n = l.peek()
			}
		case r == '|':
			t := token{kind: tokPipe, pos: l.pos(), start: l.off, text: "|"}
			l.advance(r, n)
			t.end, t.stop = l.pos(), l.off
			toks = append(toks, t)
		default:
			t, err := l.word()
			if err != nil {
				return nil, false, err
			}
			toks = append(toks, t)
		}
	}
}

// word lexes one word: bare runs and quoted strings written next to each other
// make one word, as in a shell.
func (l *lexer) word() (token, error) {
	t := token{kind: tokWord, pos: l.pos(), start: l.off}
	// b holds the word's text once a quote makes it differ from the
	// source; until then the text is the source itself (no copy).
	var b strings.Builder
	eq := -1     // index in the text of the first '=' of the leading bare run
	bare := true // still in the leading bare run
	for {
		r, n := l.peek()
		if n == 0 || r == '\n' || r == ';' || r == '|' || isSpace(r) {
			break
		}
		if r == '\'' || r == '"' {
			if !t.quoted {
				b.WriteString(l.src[t.start:l.off])
			}
			q := l.pos()
			if l.off == t.start {
				t.lead = true
			}
			l.advance(r, n)
			if t.lead && t.inner == (Pos{}) {
				t.inner = l.pos()
			}
			t.quoted, bare = true, false
			if eq >= 0 {
				t.valQuoted = true
			}
			if err := l.quoted(r, q, &b); err != nil {
				return token{}, err
			}
			continue
		}
		if t.quoted {
			b.WriteString(l.src[l.off : l.off+n])
		}
		l.advance(r, n)
		if bare && r == '=' && eq < 0 {
			eq = l.off - t.start - 1 // bare so far: the text is the source
			t.valPos = l.pos()
		}
	}
	t.end, t.stop = l.pos(), l.off
	if t.quoted {
		t.text = b.String()
	} else {
		t.text = l.src[t.start:l.off]
	}
	if eq > 0 && isName(t.text[:eq]) {
		t.key, t.val = t.text[:eq], t.text[eq+1:]
	} else {
		t.valQuoted, t.valPos = false, Pos{}
	}
	return t, nil
}

// quoted reads a string up to its closing quote q, which was opened at open.
// Backslash escapes \" \\ \n \t work inside double quotes only; any other
// backslash is kept as written.
func (l *lexer) quoted(q rune, open Pos, b *strings.Builder) error {
	for {
		r, n := l.peek()
		if n == 0 {
			return unterminated(q, open)
		}
		l.advance(r, n)
		if r == q {
			return nil
		}
		if q == '"' && r == '\\' {
			r2, n2 := l.peek()
			if n2 == 0 {
				return unterminated(q, open)
			}
			switch r2 {
			case '"', '\\':
				b.WriteRune(r2)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte('\\')
				b.WriteString(l.src[l.off : l.off+n2])
			}
			l.advance(r2, n2)
			continue
		}
		b.WriteString(l.src[l.off-n : l.off])
	}
}

func unterminated(q rune, open Pos) *Error {
	name := "single quote (')"
	if q == '"' {
		name = `double quote (")`
	}
	return errorf(open, "", "unterminated string: missing the closing %s for the quote opened here", name)
}

// isName reports whether s can be an option or bag key: a letter or '_'
// followed by letters, digits, '_', '.' or '-'.
func isName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || r < utf8.RuneSelf && unicode.IsLetter(r):
		case i > 0 && (r == '.' || r == '-' || '0' <= r && r <= '9'):
		default:
			return false
		}
	}
	return s != ""
}

// isPlain reports whether s is a bare word that lexes as itself: no space,
// quote, separator, pipe, '=' or leading '#'.
func isPlain(s string) bool {
	if s == "" || s == "--" || s[0] == '#' || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || strings.ContainsRune(`'";|=`, r) {
			return false
		}
	}
	return true
}
