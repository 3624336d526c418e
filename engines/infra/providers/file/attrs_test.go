package fileprovider

import (
	"io/fs"
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		err  string
	}{
		{in: "0644", want: 0o644},
		{in: "0755", want: 0o755},
		{in: "2775", want: 0o2775},
		{in: "7777", want: 0o7777},
		{in: "0000", want: 0},
		{in: "644", err: `write it as four octal digits, "0644"`},
		{in: "0648", err: "four octal digits"},
		{in: "00644", err: "four octal digits"},
		{in: "", err: "four octal digits"},
		{in: "rw-r", err: "four octal digits"},
		{in: "-644", err: "four octal digits"},
	} {
		got, err := parseMode(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseMode(%q) = %o, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseMode(%q) = %o, %v; want %o", tc.in, got, err, tc.want)
		}
		if s := formatMode(got); s != tc.in {
			t.Errorf("formatMode(%o) = %q, want %q", got, s, tc.in)
		}
	}
}

func TestFileModeRoundTrip(t *testing.T) {
	for _, m := range []uint32{0, 0o644, 0o4755, 0o2775, 0o1777, 0o7777} {
		fm := toFileMode(m)
		if got := fromFileMode(fm); got != m {
			t.Errorf("fromFileMode(toFileMode(%04o)) = %04o", m, got)
		}
	}
	if fm := toFileMode(0o4755); fm&fs.ModeSetuid == 0 || fm.Perm() != 0o755 {
		t.Errorf("toFileMode(04755) = %v", fm)
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ownerSpec
		bad  bool
	}{
		{in: "root", want: ownerSpec{user: "root"}},
		{in: "root:wheel", want: ownerSpec{user: "root", group: "wheel"}},
		{in: "1000:1000", want: ownerSpec{user: "1000", group: "1000"}},
		{in: "", bad: true},
		{in: ":wheel", bad: true},
		{in: "root:", bad: true},
		{in: "a:b:c", bad: true},
	} {
		got, err := parseOwner(tc.in)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), `"user:group"`) {
				t.Errorf("parseOwner(%q) = %+v, %v; want an error", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseOwner(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{in: "/etc/motd"},
		{in: "/"},
		{in: "", err: "path is empty"},
		{in: "etc/motd", err: `path "etc/motd" is not absolute`},
		{in: "./motd", err: "not absolute"},
		{in: "/etc/motd/", err: `write it as "/etc/motd"`},
		{in: "/etc/../motd", err: `write it as "/motd"`},
		{in: "/etc//motd", err: "not clean"},
		{in: "/etc/mo\x00td", err: "NUL"},
	} {
		err := checkPath(tc.in)
		if tc.err == "" {
			if err != nil {
				t.Errorf("checkPath(%q) = %v", tc.in, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("checkPath(%q) = %v; want an error containing %q", tc.in, err, tc.err)
		}
	}
}
