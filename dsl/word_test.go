package dsl

import (
	"testing"
	"time"
)

func TestWordScalar(t *testing.T) {
	for _, tc := range []struct {
		w    Word
		want any
	}{
		{Word{Text: "42"}, int64(42)},
		{Word{Text: "-7"}, int64(-7)},
		{Word{Text: "0"}, int64(0)},
		{Word{Text: "007"}, "007"},
		{Word{Text: "1.5"}, 1.5},
		{Word{Text: "1e3"}, 1000.0},
		{Word{Text: ".5"}, 0.5},
		{Word{Text: "99999999999999999999"}, 1e20},
		{Word{Text: "inf"}, "inf"},
		{Word{Text: "NaN"}, "NaN"},
		{Word{Text: "0x10"}, "0x10"},
		{Word{Text: "1e999"}, "1e999"},
		{Word{Text: "true"}, true},
		{Word{Text: "false"}, false},
		{Word{Text: "True"}, "True"},
		{Word{Text: "42", Quoted: true}, "42"},
		{Word{Text: "true", Quoted: true}, "true"},
		{Word{Text: "nginx"}, "nginx"},
		{Word{Text: ""}, ""},
	} {
		if got := tc.w.Scalar(); got != tc.want {
			t.Errorf("%+v.Scalar() = %#v, want %#v", tc.w, got, tc.want)
		}
	}
}

func TestWordDurationTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		text string
		d    string // Duration() result or "error"
		t    string // Time(now) result or "error"
	}{
		{"90", "1m30s", "2026-11-25T09:58:30Z"},
		{"90s", "1m30s", "2026-11-25T09:58:30Z"},
		{"1h30m", "1h30m0s", "2026-11-25T08:30:00Z"},
		{"2026-11-25T10:00:00.5+01:00", "error", "2026-11-25T10:00:00.5+01:00"},
		{"99999999999999", "error", "error"},
		{"soon", "error", "error"},
		{"", "error", "error"},
	} {
		w := Word{Text: tc.text}
		got := "error"
		if d, err := w.Duration(); err == nil {
			got = d.String()
		}
		if got != tc.d {
			t.Errorf("%q.Duration() = %s, want %s", tc.text, got, tc.d)
		}
		got = "error"
		if tm, err := w.Time(now); err == nil {
			got = tm.Format(time.RFC3339Nano)
		}
		if got != tc.t {
			t.Errorf("%q.Time() = %s, want %s", tc.text, got, tc.t)
		}
	}
	if _, err := (Word{Text: "12a"}).Int(); err == nil || err.Error() != `"12a" is not an integer` {
		t.Errorf("Int error = %v", err)
	}
	if n, err := (Word{Text: "-12"}).Int(); n != -12 || err != nil {
		t.Errorf("Int = %d, %v", n, err)
	}
}

func TestQuote(t *testing.T) {
	tab := testTable()
	for _, s := range []string{"plain", "", "a b", `it's`, `say "hi"`, "a;b", "a|b", "#x", "x#", "tab\there", "nl\nx", `back\slash`, "ünï cödé"} {
		q := Quote(s)
		sts, err := Parse("emit k.x "+q, tab)
		if err != nil {
			t.Errorf("Quote(%q) = %s: %v", s, q, err)
			continue
		}
		if got := sts[0].Args["SUBJECT"].Text; got != s {
			t.Errorf("Quote(%q) = %s reads back as %q", s, q, got)
		}
	}
	if got := Quote("app/db"); got != "app/db" {
		t.Errorf("Quote quoted a plain word: %s", got)
	}
}
