package scripts

import (
	"context"
	"errors"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/cairnhq/cairn/scripts/luapat"
)

// The string library functions that do unbounded work inside one Go call
// are replaced by bounded ones (issue 11, finding 5): a Go call runs no
// Lua instruction, so the guard could neither stop nor measure it.
//
//   - find, match, gmatch and gsub match with scripts/luapat, whose
//     matcher asks the guard every few thousand steps whether to go on: a
//     backtracking pattern ends when its callback's budget does, when the
//     client leaves or when the daemon stops. gmatch finds one match per
//     call (gopher-lua's finds every match first), and gsub builds its
//     result once (gopher-lua's copies it per match).
//   - gsub, rep, format and table.concat refuse a result larger than the
//     run's memory limit.
//
// Semantics are Lua 5.1's, as sysdig's chisels expect (docs/chisels.md).

// strFuncs are the string library's replaced functions.
func (r *run) strFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"find":   r.strFind,
		"match":  r.strMatch,
		"gmatch": r.strGmatch,
		"gsub":   r.strGsub,
		"rep":    r.strRep,
		"format": r.strFormat,
	}
}

// matcher is a luapat.Matcher bound to the run's guard.
func (r *run) matcher() *luapat.Matcher {
	return &luapat.Matcher{Check: func() error {
		select {
		case <-r.g.Done():
			return context.Cause(r.g)
		default:
			return nil
		}
	}}
}

// maxResult is the largest string a library function builds.
func (r *run) maxResult() int { return int(min(r.g.limit, maxRepeat)) }

// patternError raises err in L: a pattern error with the function's name,
// the guard's own error as it is (the run reports why it was stopped).
func patternError(L *lua.LState, fn string, err error) {
	var tl *luapat.TooLongError
	switch {
	case luapat.IsError(err):
		L.RaiseError("string.%s: %v", fn, err)
	case errors.As(err, &tl):
		L.RaiseError("string.%s: %v, more than the chisel's memory limit allows", fn, err)
	default:
		L.RaiseError("%v", err)
	}
}

// strInit is Lua 5.1's start position of find and match: 1-based,
// negative from the end, clamped to the string.
func strInit(L *lua.LState, s string, arg int) int {
	init := L.OptInt(arg, 1)
	if init < 0 {
		init += len(s) + 1
	}
	init--
	return max(0, min(init, len(s)))
}

// specials are the characters that make a find pattern more than plain text.
const specials = "^$*+?.([%-"

func (r *run) strFind(L *lua.LState) int {
	s, pat := L.CheckString(1), L.CheckString(2)
	init := strInit(L, s, 3)
	if lua.LVAsBool(L.Get(4)) || !strings.ContainsAny(pat, specials) {
		i := strings.Index(s[init:], pat)
		if i < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + i + 1))
		L.Push(lua.LNumber(init + i + len(pat)))
		return 2
	}
	start, end, caps, found, err := r.matcher().Find(s, pat, init, false)
	if err != nil {
		patternError(L, "find", err)
	}
	if !found {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(start + 1))
	L.Push(lua.LNumber(end))
	return 2 + pushCaptures(L, s, caps)
}

func (r *run) strMatch(L *lua.LState) int {
	s, pat := L.CheckString(1), L.CheckString(2)
	_, _, caps, found, err := r.matcher().Find(s, pat, strInit(L, s, 3), true)
	if err != nil {
		patternError(L, "match", err)
	}
	if !found {
		L.Push(lua.LNil)
		return 1
	}
	return pushCaptures(L, s, caps)
}

func pushCaptures(L *lua.LState, s string, caps []luapat.Capture) int {
	for _, c := range caps {
		L.Push(captureValue(s, c))
	}
	return len(caps)
}

func captureValue(s string, c luapat.Capture) lua.LValue {
	if c.Len == luapat.CapPosition {
		return lua.LNumber(c.Start + 1)
	}
	return lua.LString(s[c.Start : c.Start+c.Len])
}

func (r *run) strGmatch(L *lua.LState) int {
	s, pat := L.CheckString(1), L.CheckString(2)
	it := r.matcher().Iter(s, pat)
	L.Push(L.NewFunction(func(L *lua.LState) int {
		caps, found, err := it.Next()
		if err != nil {
			patternError(L, "gmatch", err)
		}
		if !found {
			return 0
		}
		return pushCaptures(L, s, caps)
	}))
	return 1
}

func (r *run) strGsub(L *lua.LState) int {
	s, pat := L.CheckString(1), L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTNumber, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, -1)
	var replace luapat.Replacer
	switch rv := repl.(type) {
	case lua.LString, lua.LNumber:
		out, n, err := r.matcher().GsubTemplate(s, pat, luapat.ParseTemplate(lua.LVAsString(rv)), limit, r.maxResult())
		if err != nil {
			patternError(L, "gsub", err)
		}
		L.Push(lua.LString(out))
		L.Push(lua.LNumber(n))
		return 2
	case *lua.LTable:
		replace = func(start, end int, caps []luapat.Capture) (string, bool, error) {
			return replacement(L, L.GetTable(rv, captureValue(s, caps[0])))
		}
	case *lua.LFunction:
		replace = func(start, end int, caps []luapat.Capture) (string, bool, error) {
			L.Push(rv)
			for _, c := range caps {
				L.Push(captureValue(s, c))
			}
			L.Call(len(caps), 1)
			v := L.Get(-1)
			L.Pop(1)
			return replacement(L, v)
		}
	}
	out, n, err := r.matcher().Gsub(s, pat, limit, r.maxResult(), replace)
	if err != nil {
		patternError(L, "gsub", err)
	}
	L.Push(lua.LString(out))
	L.Push(lua.LNumber(n))
	return 2
}

// replacement is a table's or function's answer for one match: false or
// nil keeps the match, a string or number replaces it.
func replacement(L *lua.LState, v lua.LValue) (string, bool, error) {
	switch x := v.(type) {
	case *lua.LNilType:
		return "", true, nil
	case lua.LBool:
		if !bool(x) {
			return "", true, nil
		}
	case lua.LString, lua.LNumber:
		return lua.LVAsString(x), false, nil
	}
	return "", false, &luapat.Error{Msg: "invalid replacement value (a " + v.Type().String() + ")"}
}

// strFormat is Lua 5.1's string.format: each directive is
// %[flags][width][.precision]conversion with flags from "-+ #0", a width
// and a precision of at most two digits (so no directive builds more than
// its argument and 99 bytes), and the conversions d i u c o x X e E f g G
// q s. gopher-lua's handed the format to Go's fmt as it was.
func (r *run) strFormat(L *lua.LState) int {
	f := L.CheckString(1)
	var b strings.Builder
	arg := 1
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			b.WriteByte('%')
			continue
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		if i-start > 5 {
			L.RaiseError("string.format: invalid format (repeated flags)")
		}
		digits := func() {
			n := 0
			for i < len(f) && isDigit(f[i]) {
				i++
				n++
			}
			if n > 2 {
				L.RaiseError("string.format: invalid format (width or precision too long)")
			}
		}
		digits()
		if i < len(f) && f[i] == '.' {
			i++
			digits()
		}
		if i >= len(f) {
			L.RaiseError("string.format: invalid option '%%' at the end of the format")
		}
		spec := "%" + f[start:i]
		arg++
		switch conv := f[i]; conv {
		case 'd', 'i':
			b.WriteString(fmtSprintf(spec+"d", int64(L.CheckNumber(arg))))
		case 'u':
			b.WriteString(fmtSprintf(spec+"d", uint64(int64(L.CheckNumber(arg)))))
		case 'o', 'x', 'X':
			b.WriteString(fmtSprintf(spec+string(conv), uint64(int64(L.CheckNumber(arg)))))
		case 'c':
			b.WriteByte(byte(int64(L.CheckNumber(arg))))
		case 'e', 'E', 'f', 'g', 'G':
			b.WriteString(fmtSprintf(spec+string(conv), float64(L.CheckNumber(arg))))
		case 'q':
			quoteLua(&b, L.CheckString(arg))
		case 's':
			v := L.Get(arg)
			if v == lua.LNil && arg > L.GetTop() {
				L.ArgError(arg, "string expected, got no value")
			}
			b.WriteString(fmtSprintf(spec+"s", L.ToStringMeta(v).String()))
		default:
			L.RaiseError("string.format: invalid option '%%%c' to 'format'", conv)
		}
		if b.Len() > r.maxResult() {
			L.RaiseError("string.format: the result would be longer than %d bytes, more than the chisel's memory limit allows", r.maxResult())
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quoteLua writes s as %q does: between double quotes, with ", \, newline
// (as \ and a newline), \r and \0 escaped.
func quoteLua(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString("\\\n")
		case '\r':
			b.WriteString("\\r")
		case 0:
			b.WriteString("\\000")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// tableConcat is Lua 5.1's table.concat, refusing a result larger than
// the memory limit before building it: a table of a million references
// to one large string holds little, and its concatenation a great deal.
func (r *run) tableConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	if i > j {
		L.Push(lua.LString(""))
		return 1
	}
	total := int64(j-i) * int64(len(sep))
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(k).(type) {
		case lua.LString:
			total += int64(len(v))
		case lua.LNumber:
			total += int64(len(v.String()))
		default:
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		if total > int64(r.maxResult()) {
			L.RaiseError("table.concat: the result would be longer than %d bytes, more than the chisel's memory limit allows", r.maxResult())
		}
	}
	var b strings.Builder
	b.Grow(int(total))
	for k := i; k <= j; k++ {
		if k > i {
			b.WriteString(sep)
		}
		b.WriteString(lua.LVAsString(t.RawGetInt(k)))
	}
	L.Push(lua.LString(b.String()))
	return 1
}

func fmtSprintf(format string, a any) string { return fmt.Sprintf(format, a) }
