package dsl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Word is one word of a statement as written.
type Word struct {
	Text   string // unquoted, unescaped text
	Quoted bool   // written (at least partly) in quotes: always a value, never a verb, flag or option
	Pos    Pos
}

// Int reads the word as a base-10 integer.
func (w Word) Int() (int64, error) {
	n, err := strconv.ParseInt(w.Text, 10, 64)
	if err != nil {
		if isInteger(w.Text) {
			return 0, fmt.Errorf("%q is out of range for an integer", w.Text)
		}
		return 0, fmt.Errorf("%q is not an integer", w.Text)
	}
	return n, nil
}

// Duration reads the word as a Go duration ("90s", "1h30m") or as plain
// seconds ("90" is 90s).
func (w Word) Duration() (time.Duration, error) {
	if isInteger(w.Text) {
		n, err := strconv.ParseInt(w.Text, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("%q is out of range for a duration", w.Text)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(w.Text)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write 90s, 1h30m or plain seconds)", w.Text)
	}
	return d, nil
}

// Time reads the word as an RFC 3339 time, or as a duration meaning "that long
// before now" (since=10m).
func (w Word) Time(now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, w.Text); err == nil {
		return t, nil
	}
	if d, err := w.Duration(); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (write RFC 3339 such as 2026-11-25T10:00:00Z, or a duration such as 10m for that long ago)", w.Text)
}

// Scalar returns the value typed as `emit` stores it: an unquoted word that
// reads as an integer is an int64, as a decimal number a float64, true or false
// a bool; anything else, and every quoted word, is a string. Integers with a
// leading zero ("007") stay strings, so identifiers such as zip codes survive.
func (w Word) Scalar() any {
	if w.Quoted {
		return w.Text
	}
	switch w.Text {
	case "true":
		return true
	case "false":
		return false
	}
	if isInteger(w.Text) && !leadingZero(w.Text) {
		if n, err := strconv.ParseInt(w.Text, 10, 64); err == nil {
			return n
		}
	}
	if isDecimal(w.Text) && !leadingZero(w.Text) {
		if f, err := strconv.ParseFloat(w.Text, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
	}
	return w.Text
}

// isInteger reports whether s is an optional sign followed by ASCII digits.
func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return s != "" && digits(s) == len(s)
}

// isDecimal reports whether s is a decimal number: [+-]digits[.digits][e[+-]digits],
// with digits on at least one side of the point. It rejects "inf", "NaN" and hex.
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	i := digits(s)
	mant := i
	if i < len(s) && s[i] == '.' {
		j := digits(s[i+1:])
		mant += j
		i += 1 + j
	}
	if mant == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s[i:])
		if j == 0 {
			return false
		}
		i += j
	}
	return i == len(s)
}

func digits(s string) int {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// leadingZero reports whether the integer part of a number has a superfluous
// leading zero, as in "007" or "-01.5".
func leadingZero(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return len(s) > 1 && s[0] == '0' && '0' <= s[1] && s[1] <= '9'
}

// Quote returns s written as one word of the language: unchanged unless it is
// empty or holds a space, a quote, ';', '|' or '#', else double-quoted with
// \" \\ \n \t escapes. The CLI uses it to turn its arguments into a statement.
func Quote(s string) string {
	need := s == ""
	for _, r := range s {
		if unicode.IsSpace(r) || strings.ContainsRune(`'";|#`, r) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
