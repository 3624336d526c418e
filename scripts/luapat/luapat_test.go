package luapat

import (
	"errors"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	m := &Matcher{}
	for _, tc := range []struct {
		src, pat string
		init     int
		want     string // start:end and the captures, or "nil"
	}{
		{"hello world", "o w", 0, "4:7"},
		{"hello world", "(o)(r)", 0, "7:9 o r"},
		{"  trim  ", "^%s*(.-)%s*$", 0, "0:8 trim"},
		{"key=val", "()=()", 0, "3:4 @4 @5"},
		{"f(a(b)c)d", "%b()", 0, "1:8"},
		{"THE (quick) fox", "%f[%a]%a+", 4, "5:10"},
		{"aXa", "(a)X%1", 0, "0:3 a"},
		{"abc", "^b", 0, "nil"},
		{"abc", "^b", 1, "1:2"},
		{"a]b", "[]]", 0, "1:2"},
		{"a-b", "[a%-]+", 0, "0:2"},
		{"x\x00y", "%z", 0, "1:2"},
		{"", "x*", 0, "0:0"},
		{"abc", "$", 0, "3:3"},
		{"a.b", "%.", 0, "1:2"},
	} {
		s, e, caps, found, err := m.Find(tc.src, tc.pat, tc.init, false)
		if err != nil {
			t.Errorf("Find(%q, %q): %v", tc.src, tc.pat, err)
			continue
		}
		got := "nil"
		if found {
			var b strings.Builder
			b.WriteString(itoa(s) + ":" + itoa(e))
			for _, c := range caps {
				if c.Len == CapPosition {
					b.WriteString(" @" + itoa(c.Start+1))
				} else {
					b.WriteString(" " + tc.src[c.Start:c.Start+c.Len])
				}
			}
			got = b.String()
		}
		if got != tc.want {
			t.Errorf("Find(%q, %q, %d) = %s, want %s", tc.src, tc.pat, tc.init, got, tc.want)
		}
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestPatternErrors(t *testing.T) {
	m := &Matcher{}
	for pat, want := range map[string]string{
		"%":                       "malformed pattern (ends with '%')",
		"[a":                      "malformed pattern (missing ']')",
		"(a":                      "unfinished capture",
		"a)":                      "invalid pattern capture",
		"%1":                      "invalid capture index",
		"%b":                      "unbalanced pattern",
		"%fa":                     "missing '[' after '%f' in pattern",
		strings.Repeat("(", 33):   "too many captures",
		strings.Repeat("a?", 300): "pattern too complex",
	} {
		_, _, _, _, err := m.Find(strings.Repeat("a", 400), pat, 0, true)
		if err == nil || err.Error() != want || !IsError(err) {
			t.Errorf("Find(%q): %v, want %q", pat, err, want)
		}
	}
}

// TestCheckStopsBacktracking: a pattern that backtracks for minutes stops
// at the first Check that says so.
func TestCheckStopsBacktracking(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	m := &Matcher{Check: func() error {
		if calls++; calls >= 100 {
			return stop
		}
		return nil
	}}
	src := strings.Repeat("a", 30000)
	_, _, _, _, err := m.Find(src, strings.Repeat("a*", 10)+"b", 0, false)
	if !errors.Is(err, stop) || calls != 100 {
		t.Fatalf("err = %v after %d checks, want the Check's error at the 100th", err, calls)
	}
	_, _, err = m.Gsub(src, "(.-)(.-)(.-)b", -1, 1<<30, func(int, int, []Capture) (string, bool, error) { return "", false, nil })
	if !errors.Is(err, stop) {
		t.Fatalf("gsub: %v", err)
	}
}

func TestGsubAndIter(t *testing.T) {
	m := &Matcher{}
	out, n, err := m.GsubTemplate("hello world", "(o)", ParseTemplate("[%1%%]"), -1, 100)
	if err != nil || out != "hell[o%] w[o%]rld" || n != 2 {
		t.Fatalf("gsub = %q %d %v", out, n, err)
	}
	out, n, _ = m.GsubTemplate("abc", "", ParseTemplate("-"), -1, 100)
	if out != "-a-b-c-" || n != 4 {
		t.Fatalf("gsub of the empty pattern = %q %d", out, n)
	}
	if _, _, err := m.GsubTemplate("xxxx", "x", ParseTemplate("%0%0%0"), -1, 10); err == nil {
		t.Fatal("a result over maxLen was built")
	}
	it := m.Iter("one two  three", "%a+")
	var words []string
	for {
		caps, ok, err := it.Next()
		if err != nil || !ok {
			break
		}
		words = append(words, "one two  three"[caps[0].Start:caps[0].Start+caps[0].Len])
	}
	if strings.Join(words, ",") != "one,two,three" {
		t.Fatalf("gmatch: %v", words)
	}
}

// FuzzFind: any subject and pattern end, with a result inside the subject
// or a pattern error, under a bound of steps.
func FuzzFind(f *testing.F) {
	for _, p := range []string{"%a+", "(a*)*b", "[%w_]+", "%b()", "%f[%a]", "(.-)%1", "[^]]", "^$"} {
		f.Add("some (text) with a]b 123", p, 0)
	}
	f.Fuzz(func(t *testing.T, src, pat string, init int) {
		steps := 0
		m := &Matcher{Check: func() error {
			if steps++; steps > 200 {
				return errors.New("budget")
			}
			return nil
		}}
		init = max(0, min(init, len(src)))
		s, e, caps, found, err := m.Find(src, pat, init, true)
		if err != nil || !found {
			return
		}
		if s < init || e < s || e > len(src) {
			t.Fatalf("match %d:%d of %d bytes from %d", s, e, len(src), init)
		}
		for _, c := range caps {
			if c.Len != CapPosition && (c.Start < 0 || c.Len < 0 || c.Start+c.Len > len(src)) {
				t.Fatalf("capture %+v of %d bytes", c, len(src))
			}
		}
		m.GsubTemplate(src, pat, ParseTemplate("<%0>"), -1, 1<<16)
	})
}
