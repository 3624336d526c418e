package scripts

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// formatter is a chisel's event formatter (chisel.set_event_formatter):
// sysdig's format, text with %FIELD references, printed for each event
// whose on_event returns true (every event passing the filter, for a
// chisel without on_event).
type formatter struct {
	parts []formatPart
}

type formatPart struct {
	text  string
	field *filter.FieldGetter // nil: text
	width int                 // %20proc.name pads to 20, %-20 pads on the right
	left  bool
}

// parseFormat reads sysdig's format: %FIELD, %WIDTHFIELD, %-WIDTHFIELD,
// and text; a field cairn does not have is an error naming it.
func parseFormat(f string) (*formatter, error) {
	var out formatter
	var text strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			text.WriteByte(f[i])
			continue
		}
		if i+1 < len(f) && f[i+1] == '%' {
			text.WriteByte('%')
			i++
			continue
		}
		j := i + 1
		var p formatPart
		if j < len(f) && f[j] == '-' {
			p.left = true
			j++
		}
		k := j
		for k < len(f) && f[k] >= '0' && f[k] <= '9' {
			k++
		}
		if k > j {
			p.width, _ = strconv.Atoi(f[j:k])
			if p.width > maxFormatWidth || k-j > 4 {
				return nil, fmt.Errorf("%q: the width at column %d is over %d", f, j+1, maxFormatWidth)
			}
		}
		e := k
		for e < len(f) && (isFieldByte(f[e]) || f[e] == '.' && e+1 < len(f) && isFieldByte(f[e+1])) {
			e++
		}
		// An index: evt.arg[1], proc.aname[2].
		if e < len(f) && f[e] == '[' {
			if c := strings.IndexByte(f[e:], ']'); c > 1 && strings.Trim(f[e+1:e+c], "0123456789") == "" {
				e += c + 1
			}
		}
		if e == k {
			return nil, fmt.Errorf("%q: %% at column %d is followed by no field name (write %%%% for a percent sign)", f, i+1)
		}
		g, err := filter.Field(f[k:e])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		if text.Len() > 0 {
			out.parts = append(out.parts, formatPart{text: text.String()})
			text.Reset()
		}
		p.field = g
		out.parts = append(out.parts, p)
		i = e - 1
	}
	if text.Len() > 0 {
		out.parts = append(out.parts, formatPart{text: text.String()})
	}
	return &out, nil
}

func isFieldByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// maxFormatWidth bounds %WIDTHFIELD: a line is for a terminal.
const maxFormatWidth = 1024

// format renders one event; a field the event lacks is <NA>, as sysdig's.
// Buffers are written in the run's output format (sysdig.set_output_format).
func (f *formatter) format(raw *journal.Raw, outFmt string) string {
	var b strings.Builder
	for _, p := range f.parts {
		if p.field == nil {
			b.WriteString(p.text)
			continue
		}
		s := "<NA>"
		if v, ok := p.field.Get(raw); ok {
			switch x := v.(type) {
			case string:
				s = x
				if isBuffer(p.field.Name()) {
					s = renderBuffer(x, outFmt)
				}
			case int64:
				if p.field.Type() == "timestamp" {
					s = FormatTime(x)
				} else {
					s = strconv.FormatInt(x, 10)
				}
			default:
				s = fmt.Sprint(x)
			}
		}
		if pad := p.width - len(s); pad > 0 {
			if p.left {
				s += strings.Repeat(" ", pad)
			} else {
				s = strings.Repeat(" ", pad) + s
			}
		}
		b.WriteString(s)
	}
	return b.String()
}

// setEventFormatter is chisel.set_event_formatter(FORMAT). "" (what most
// chisels give) prints nothing per event.
func (in *instance) setEventFormatter(L *lua.LState) int {
	fs := L.CheckString(1)
	if fs == "" {
		in.formatter = nil
		return 0
	}
	f, err := parseFormat(fs)
	if err != nil {
		L.RaiseError("chisel.set_event_formatter: %v", err)
	}
	in.formatter = f
	return 0
}

// isBuffer names the fields that hold an I/O buffer.
func isBuffer(name string) bool {
	switch name {
	case "evt.buffer", "evt.arg.data", "evt.rawarg.data", "evt.arg[1]", "evt.rawarg[1]":
		return true
	}
	return false
}

// renderBuffer writes a buffer as sysdig's output formats do, in an event
// line and in evt.field's answer: normal (and json) shows printable ASCII
// and the rest as dots (sysdig's http.lua matches "\r\n" as "%.%."),
// ascii keeps line breaks too, hex and hexascii write hex pairs (hexascii
// with the ASCII beside), base64 base64.
func renderBuffer(b, outFmt string) string {
	switch outFmt {
	case "hex":
		return hex.EncodeToString([]byte(b))
	case "hexascii":
		return hex.EncodeToString([]byte(b)) + " " + dots(b, false)
	case "base64":
		return base64.StdEncoding.EncodeToString([]byte(b))
	case "ascii":
		return dots(b, true)
	}
	return dots(b, false)
}

func dots(b string, keepLines bool) string {
	out := []byte(b)
	for i, c := range out {
		if (c < 0x20 || c > 0x7e) && !(keepLines && c == '\n') {
			out[i] = '.'
		}
	}
	return string(out)
}

// setOutputFormat is sysdig.set_output_format(FORMAT): how the event
// formatter writes buffers (normal, ascii, hex, hexascii, base64, json),
// which sysdig.get_output_format then answers.
func (in *instance) setOutputFormat(L *lua.LState) int {
	switch f := L.CheckString(1); f {
	case "normal", "ascii", "hex", "hexascii", "base64", "json":
		in.r.outputFormat = f
	default:
		L.ArgError(1, "the output format is one of normal, ascii, hex, hexascii, base64, json")
	}
	return 0
}

// errExit is how os.exit ends a run: at once, as sysdig's process ends.
var errExit = errors.New("os.exit")

// exitError is os.exit with a failure status, where it was called.
type exitError struct {
	chisel, callback, where string
	code                    int
}

func (e *exitError) Error() string {
	where := e.where
	if where != "" {
		where += " "
	}
	return fmt.Sprintf("chisel %s: %s: %sos.exit(%d) ended the run", e.chisel, e.callback, where, e.code)
}

// osExit is os.exit([code]): the run ends at once (no further callback,
// no on_capture_end), successfully for no code, 0 or true.
func (in *instance) osExit(L *lua.LState) int {
	code := 0
	switch v := L.Get(1).(type) {
	case lua.LNumber:
		code = int(v)
	case lua.LBool:
		if !bool(v) {
			code = 1
		}
	}
	if code == 0 {
		in.r.g.cancel(errExit)
	} else {
		in.r.g.cancel(&exitError{chisel: in.c.name, callback: in.r.callback, where: L.Where(1), code: code})
	}
	L.RaiseError("os.exit")
	return 0
}
