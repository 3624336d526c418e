// Package luapat matches Lua 5.1 patterns, the language of string.find,
// match, gmatch and gsub, with a bound on the work a match may do.
//
// A pattern is matched by backtracking, as Lua's own lstrlib does, and a
// pattern such as "(.-)-(.-)-(.-)x" over a long subject backtracks for
// minutes inside one library call, where no Lua instruction runs and
// nothing else can stop it. Here every step of the matcher counts, and
// every CheckEvery steps the Matcher's Check is asked whether to go on: a
// chisel's guard answers with its cancellation (the client left, the
// callback's budget ran out, the daemon is stopping), and the match ends
// with that error within microseconds.
//
// Semantics follow Lua 5.1 (what sysdig's chisels are written for):
// character classes %a %c %d %l %p %s %u %w %x %z and their complements
// in the C locale, sets with ranges, the quantifiers * + - ?, anchors,
// captures and position captures, back-references %1-%9, %b and %f.
// Nesting deeper than 200 (one level per quantified item being tried) is
// "pattern too complex", as in Lua 5.2.
package luapat

import (
	"errors"
	"fmt"
	"strconv"
	"unsafe"
)

// unsafeString views b as a string for the moment Gsub copies it into
// its result; b is reused after.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

const (
	// MaxCaptures is the most captures a pattern may have (LUA_MAXCAPTURES).
	MaxCaptures = 32
	// maxDepth bounds the matcher's recursion (Lua 5.2's MAXCCALLS).
	maxDepth = 200
	// CheckEvery is how many steps pass between two calls of Check.
	CheckEvery = 1 << 10

	capUnfinished = -1
	// CapPosition is the Len of a position capture, "()".
	CapPosition = -2
)

// Error is a malformed pattern or a misuse of captures, with Lua's words.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Capture is one capture of a match: src[Start:Start+Len], or, for a
// position capture (Len == CapPosition), the 0-based position Start.
type Capture struct{ Start, Len int }

// Matcher carries the bound of the matches made with it.
type Matcher struct {
	// Check is called every CheckEvery steps; an error from it ends the
	// match with that error. Nil never stops.
	Check func() error
	steps int
}

type capture struct{ init, len int }

// state is one match attempt of pat against src.
type state struct {
	m        *Matcher
	src, pat string
	level    int
	capture  [MaxCaptures]capture
	depth    int
}

// abort carries an error out of the recursion.
type abort struct{ err error }

func (ms *state) fail(format string, args ...any) {
	panic(abort{&Error{fmt.Sprintf(format, args...)}})
}

func (ms *state) step() {
	m := ms.m
	m.steps++
	if m.steps >= CheckEvery {
		m.steps = 0
		if m.Check != nil {
			if err := m.Check(); err != nil {
				panic(abort{err})
			}
		}
	}
}

// run calls fn, turning an abort into its error.
func run(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(abort)
			if !ok {
				panic(r)
			}
			err = a.err
		}
	}()
	fn()
	return nil
}

// IsError reports whether err is a pattern error (not a Check's).
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func (ms *state) classEnd(p int) int {
	pat := ms.pat
	c := pat[p]
	p++
	switch c {
	case '%':
		if p >= len(pat) {
			ms.fail("malformed pattern (ends with '%%')")
		}
		return p + 1
	case '[':
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		for { // the first character of a set is never its end: "[]]"
			if p >= len(pat) {
				ms.fail("malformed pattern (missing ']')")
			}
			c := pat[p]
			p++
			if c == '%' && p < len(pat) {
				p++ // an escape, such as %]
			}
			if p < len(pat) && pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

func isalpha(c byte) bool  { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isdigit(c byte) bool  { return c >= '0' && c <= '9' }
func islower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isupper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isspace(c byte) bool  { return c == ' ' || c >= '\t' && c <= '\r' }
func iscntrl(c byte) bool  { return c < 0x20 || c == 0x7f }
func isalnum(c byte) bool  { return isalpha(c) || isdigit(c) }
func ispunct(c byte) bool  { return c > 0x20 && c < 0x7f && !isalnum(c) }
func isxdigit(c byte) bool { return isdigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func lower(c byte) byte {
	if isupper(c) {
		return c + ('a' - 'A')
	}
	return c
}

// matchClass reports whether c is in the class %cl.
func matchClass(c, cl byte) bool {
	var res bool
	switch lower(cl) {
	case 'a':
		res = isalpha(c)
	case 'c':
		res = iscntrl(c)
	case 'd':
		res = isdigit(c)
	case 'g':
		// Lua 5.2's and LuaJIT's printable-but-space class, which sysdig's
		// chisels use (http.lua); Lua 5.1 has no %g.
		res = c > 0x20 && c < 0x7f
	case 'l':
		res = islower(c)
	case 'p':
		res = ispunct(c)
	case 's':
		res = isspace(c)
	case 'u':
		res = isupper(c)
	case 'w':
		res = isalnum(c)
	case 'x':
		res = isxdigit(c)
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if isupper(cl) {
		return !res
	}
	return res
}

// matchBracketClass reports whether c is in the set pat[p:ec+1], p at its
// '[' and ec at its ']'.
func (ms *state) matchBracketClass(c byte, p, ec int) bool {
	pat := ms.pat
	sig := true
	if pat[p+1] == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case pat[p] == '%':
			p++
			if matchClass(c, pat[p]) {
				return sig
			}
		case pat[p+1] == '-' && p+2 < ec:
			p += 2
			if pat[p-2] <= c && c <= pat[p] {
				return sig
			}
		case pat[p] == c:
			return sig
		}
	}
	return !sig
}

// singleMatch reports whether src[s] matches the single item pat[p:ep].
func (ms *state) singleMatch(s, p, ep int) bool {
	if s >= len(ms.src) {
		return false
	}
	c := ms.src[s]
	switch ms.pat[p] {
	case '.':
		return true
	case '%':
		return matchClass(c, ms.pat[p+1])
	case '[':
		return ms.matchBracketClass(c, p, ep-1)
	}
	return ms.pat[p] == c
}

func (ms *state) matchBalance(s, p int) int {
	if p+1 >= len(ms.pat) {
		ms.fail("unbalanced pattern")
	}
	if s >= len(ms.src) || ms.src[s] != ms.pat[p] {
		return -1
	}
	b, e := ms.pat[p], ms.pat[p+1]
	cont := 1
	for s++; s < len(ms.src); s++ {
		ms.step()
		switch ms.src[s] {
		case e:
			if cont--; cont == 0 {
				return s + 1
			}
		case b:
			cont++
		}
	}
	return -1
}

func (ms *state) maxExpand(s, p, ep int) int {
	i := 0
	for ms.singleMatch(s+i, p, ep) {
		ms.step()
		i++
	}
	for ; i >= 0; i-- { // try with the most repetitions, then fewer
		ms.step()
		if r := ms.match(s+i, ep+1); r != -1 {
			return r
		}
	}
	return -1
}

func (ms *state) minExpand(s, p, ep int) int {
	for {
		ms.step()
		if r := ms.match(s, ep+1); r != -1 {
			return r
		}
		if !ms.singleMatch(s, p, ep) {
			return -1
		}
		s++
	}
}

func (ms *state) startCapture(s, p, what int) int {
	if ms.level >= MaxCaptures {
		ms.fail("too many captures")
	}
	ms.capture[ms.level] = capture{s, what}
	ms.level++
	r := ms.match(s, p)
	if r == -1 {
		ms.level--
	}
	return r
}

func (ms *state) endCapture(s, p int) int {
	l := ms.captureToClose()
	ms.capture[l].len = s - ms.capture[l].init
	r := ms.match(s, p)
	if r == -1 {
		ms.capture[l].len = capUnfinished
	}
	return r
}

func (ms *state) captureToClose() int {
	for l := ms.level - 1; l >= 0; l-- {
		if ms.capture[l].len == capUnfinished {
			return l
		}
	}
	ms.fail("invalid pattern capture")
	return 0
}

func (ms *state) matchCapture(s int, d byte) int {
	l := int(d - '1')
	if l < 0 || l >= ms.level || ms.capture[l].len == capUnfinished {
		ms.fail("invalid capture index")
	}
	c := ms.capture[l]
	if c.len < 0 { // a position capture matches nothing
		return -1
	}
	if len(ms.src)-s >= c.len && ms.src[c.init:c.init+c.len] == ms.src[s:s+c.len] {
		return s + c.len
	}
	return -1
}

// match matches pat[p:] at src[s:] and returns where the match ends, or -1.
func (ms *state) match(s, p int) int {
	if ms.depth++; ms.depth > maxDepth {
		ms.fail("pattern too complex")
	}
	defer func() { ms.depth-- }()
	pat := ms.pat
	for {
		ms.step()
		if p == len(pat) {
			return s
		}
		switch pat[p] {
		case '(':
			if p+1 < len(pat) && pat[p+1] == ')' {
				return ms.startCapture(s, p+2, CapPosition)
			}
			return ms.startCapture(s, p+1, capUnfinished)
		case ')':
			return ms.endCapture(s, p+1)
		case '$':
			if p+1 == len(pat) {
				if s == len(ms.src) {
					return s
				}
				return -1
			}
		case '%':
			if p+1 < len(pat) {
				switch c := pat[p+1]; {
				case c == 'b':
					if s = ms.matchBalance(s, p+2); s == -1 {
						return -1
					}
					p += 4
					continue
				case c == 'f':
					p += 2
					if p >= len(pat) || pat[p] != '[' {
						ms.fail("missing '[' after '%%f' in pattern")
					}
					ep := ms.classEnd(p)
					var prev, cur byte
					if s > 0 {
						prev = ms.src[s-1]
					}
					if s < len(ms.src) {
						cur = ms.src[s]
					}
					if !ms.matchBracketClass(prev, p, ep-1) && ms.matchBracketClass(cur, p, ep-1) {
						p = ep
						continue
					}
					return -1
				case isdigit(c):
					if s = ms.matchCapture(s, c); s == -1 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		// A single item, perhaps quantified.
		ep := ms.classEnd(p)
		m := ms.singleMatch(s, p, ep)
		if ep < len(pat) {
			switch pat[ep] {
			case '?':
				if m {
					if r := ms.match(s+1, ep+1); r != -1 {
						return r
					}
				}
				p = ep + 1
				continue
			case '*':
				return ms.maxExpand(s, p, ep)
			case '+':
				if !m {
					return -1
				}
				return ms.maxExpand(s+1, p, ep)
			case '-':
				return ms.minExpand(s, p, ep)
			}
		}
		if !m {
			return -1
		}
		s++
		p = ep
	}
}

// captures returns the match's captures; a match without any has the whole
// match as its one capture, as Lua returns it.
func (ms *state) captures(s, e int, wholeIfNone bool) ([]Capture, error) {
	n := ms.level
	if n == 0 && wholeIfNone {
		return []Capture{{s, e - s}}, nil
	}
	out := make([]Capture, n)
	for i := range n {
		c := ms.capture[i]
		if c.len == capUnfinished {
			return nil, &Error{"unfinished capture"}
		}
		out[i] = Capture{c.init, c.len}
	}
	return out, nil
}

// Find finds the first match of pat in src at or after init (0-based, at
// most len(src)), as string.find and string.match do: a leading '^'
// anchors it at init. It reports the match's bounds and its captures
// (the whole match when the pattern has none and whole is set).
func (m *Matcher) Find(src, pat string, init int, whole bool) (start, end int, caps []Capture, found bool, err error) {
	ms := &state{m: m, src: src, pat: pat}
	p := 0
	anchor := len(pat) > 0 && pat[0] == '^'
	if anchor {
		p = 1
	}
	err = run(func() {
		for s := init; s <= len(src); s++ {
			ms.level = 0
			if e := ms.match(s, p); e != -1 {
				start, end, found = s, e, true
				return
			}
			if anchor {
				return
			}
		}
	})
	if err != nil || !found {
		return 0, 0, nil, false, err
	}
	caps, err = ms.captures(start, end, whole)
	if err != nil {
		return 0, 0, nil, false, err
	}
	return start, end, caps, true, nil
}

// Iter is string.gmatch's iteration: successive matches of a pattern, an
// empty match moving on by one (Lua 5.1: '^' is not an anchor here).
type Iter struct {
	m        *Matcher
	src, pat string
	pos      int
}

// Iter returns the matches of pat in src.
func (m *Matcher) Iter(src, pat string) *Iter { return &Iter{m: m, src: src, pat: pat} }

// Next returns the next match's captures (the whole match when the
// pattern has none), or found false when there are no more.
func (it *Iter) Next() (caps []Capture, found bool, err error) {
	ms := &state{m: it.m, src: it.src, pat: it.pat}
	var s, e int
	err = run(func() {
		for s = it.pos; s <= len(it.src); s++ {
			ms.level = 0
			if e = ms.match(s, 0); e != -1 {
				found = true
				return
			}
		}
	})
	if err != nil || !found {
		it.pos = len(it.src) + 1
		return nil, false, err
	}
	it.pos = e
	if e == s {
		it.pos++ // an empty match: go on by one
	}
	caps, err = ms.captures(s, e, true)
	return caps, err == nil, err
}

// Template is a parsed replacement string of gsub: %0 the whole match,
// %1-%9 a capture (%1 is the whole match when the pattern has none), %%
// a percent sign; any other %c is c, as in Lua 5.1.
type Template struct{ parts []tmplPart }

type tmplPart struct {
	lit string
	ref int // -1: lit; 0: the whole match; k: capture k
}

// ParseTemplate parses a replacement string.
func ParseTemplate(t string) Template {
	var parts []tmplPart
	lit := make([]byte, 0, len(t))
	flush := func() {
		if len(lit) > 0 {
			parts = append(parts, tmplPart{lit: string(lit), ref: -1})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '%' || i+1 == len(t) {
			lit = append(lit, c)
			continue
		}
		i++
		if d := t[i]; isdigit(d) {
			flush()
			parts = append(parts, tmplPart{ref: int(d - '0')})
		} else {
			lit = append(lit, d)
		}
	}
	flush()
	return Template{parts}
}

// Expand appends the template's expansion for one match to dst, refusing
// to make dst longer than maxLen.
func (t Template) Expand(dst []byte, src string, start, end int, caps []Capture, maxLen int) ([]byte, error) {
	for _, p := range t.parts {
		if len(dst) > maxLen {
			return nil, &TooLongError{Max: maxLen}
		}
		switch {
		case p.ref < 0:
			dst = append(dst, p.lit...)
		case p.ref == 0:
			dst = append(dst, src[start:end]...)
		case p.ref > len(caps):
			return nil, &Error{"invalid capture index"}
		default:
			c := caps[p.ref-1]
			if c.Len == CapPosition {
				dst = strconv.AppendInt(dst, int64(c.Start+1), 10)
			} else {
				dst = append(dst, src[c.Start:c.Start+c.Len]...)
			}
		}
	}
	if len(dst) > maxLen {
		return nil, &TooLongError{Max: maxLen}
	}
	return dst, nil
}

// GsubTemplate is Gsub with a replacement string, expanded in place.
func (m *Matcher) GsubTemplate(src, pat string, t Template, max int, maxLen int) (string, int, error) {
	var scratch []byte
	return m.Gsub(src, pat, max, maxLen, func(start, end int, caps []Capture) (string, bool, error) {
		var err error
		scratch, err = t.Expand(scratch[:0], src, start, end, caps, maxLen)
		return unsafeString(scratch), false, err
	})
}

// Replacer gives the replacement of one match in Gsub: the match's bounds
// and its captures (the whole match when the pattern has none). keep
// reports that the match stays as it was (a false or nil replacement).
type Replacer func(start, end int, caps []Capture) (repl string, keep bool, err error)

// Gsub replaces at most max matches (max < 0: all) of pat in src, as
// string.gsub does, refusing to build a result longer than maxLen. It
// returns the result and the number of matches.
func (m *Matcher) Gsub(src, pat string, max int, maxLen int, repl Replacer) (string, int, error) {
	ms := &state{m: m, src: src, pat: pat}
	p := 0
	anchor := len(pat) > 0 && pat[0] == '^'
	if anchor {
		p = 1
	}
	var b []byte
	n := 0
	grow := func(s string) {
		if len(b)+len(s) > maxLen {
			panic(abort{&TooLongError{Max: maxLen}})
		}
		b = append(b, s...)
	}
	err := run(func() {
		s := 0
		for max < 0 || n < max {
			ms.step()
			ms.level = 0
			e := ms.match(s, p)
			if e != -1 {
				n++
				caps, err := ms.captures(s, e, true)
				if err != nil {
					panic(abort{err})
				}
				r, keep, err := repl(s, e, caps)
				if err != nil {
					panic(abort{err})
				}
				if keep {
					r = src[s:e]
				}
				grow(r)
			}
			switch {
			case e != -1 && e > s:
				s = e
			case s < len(src):
				grow(src[s : s+1])
				s++
			default:
				return
			}
			if anchor {
				break
			}
		}
		grow(src[s:])
	})
	if err != nil {
		return "", 0, err
	}
	return string(b), n, nil
}

// TooLongError is a gsub result over its bound.
type TooLongError struct{ Max int }

func (e *TooLongError) Error() string {
	return fmt.Sprintf("the result would be longer than %d bytes", e.Max)
}
