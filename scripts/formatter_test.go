package scripts

import (
	"strings"
	"testing"
)

// TestParseFormat: sysdig's %FIELD, widths on either side, %% and text;
// a % with no field, or an unknown field, is an error naming it.
func TestParseFormat(t *testing.T) {
	raw := kvEvents(t, 1)[0]
	for _, c := range []struct{ format, want string }{
		{"%kind %evt.type!", "kv.put <NA>!"},
		{"[%8kind][%-8kind]", "[  kv.put][kv.put  ]"},
		{"100%% %subject", "100% key/0"},
	} {
		f, err := parseFormat(c.format)
		if err != nil {
			t.Fatalf("%q: %v", c.format, err)
		}
		if got := f.format(raw, "normal"); got != c.want {
			t.Errorf("%q: %q, want %q", c.format, got, c.want)
		}
	}
	for format, want := range map[string]string{"50%": "no field name", "%proc.nmae": "did you mean proc.name"} {
		if _, err := parseFormat(format); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", format, err, want)
		}
	}
	if got := renderBuffer("a\r\nb\x00", "normal") + "|" + renderBuffer("a\r\nb", "ascii") + "|" + renderBuffer("ab", "hex") + "|" + renderBuffer("ab", "base64"); got != "a..b.|a.\nb|6162|YWI=" {
		t.Errorf("buffers: %q", got)
	}
}

// FuzzEventFormat: any format either parses or is an error; a parsed one
// formats any event in any output format without failing, and one with no
// % is its own text.
func FuzzEventFormat(f *testing.F) {
	for _, s := range []string{"%evt.num %proc.name", "%-20fd.name|%5evt.res", "%%", "%", "%evt.arg[1]", "%evt.nosuch", "text", "%9999999999kind", "%-kind", "%evt.buffer %data.value"} {
		f.Add(s)
	}
	raw := kvEvents(f, 1)[0]
	f.Fuzz(func(t *testing.T, format string) {
		fm, err := parseFormat(format)
		if err != nil {
			return
		}
		for _, out := range []string{"normal", "ascii", "hex", "hexascii", "base64", "json"} {
			got := fm.format(raw, out)
			if !strings.Contains(format, "%") && got != format {
				t.Fatalf("%q formats as %q", format, got)
			}
		}
	})
}
