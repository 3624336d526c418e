package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairnhq/cairn/client"
)

// printer renders a statement's answers.
//
// In JSON mode every row and event is printed as soon as it arrives, one
// object per line. In table mode events and lines are printed as they
// arrive, while rows are held back so their columns can be aligned, and
// printed when the statement ends — or earlier, when streamRows is called
// because rows keep coming (a kv watch), after which each row is printed on
// arrival with the widths known so far.
//
// Every line is handed to w in a single Write, so an unbuffered os.Stdout
// flushes line by line.
type printer struct {
	w    io.Writer
	json bool

	cols      []string       // column names in order of first appearance
	colIndex  map[string]int // name → position in cols
	rows      [][]string     // rows not printed yet, one cell per column
	widths    []int          // column widths once streaming
	streaming bool           // rows are printed on arrival
	// lines is where "line" answers go: w, except in json mode, where the
	// text goes to stderr so that stdout stays one JSON value per line.
	lines   io.Writer
	sawLine bool // a line was answered: rows then leave out nested values the text told
	// stdout and stderr take a process's output (run, exec), as the
	// process wrote it; exit is its exit status, once answered.
	stdout, stderr io.Writer
	exit           *int
}

func newPrinter(w io.Writer, jsonMode bool) *printer {
	return &printer{w: w, lines: w, stdout: w, stderr: w, json: jsonMode, colIndex: map[string]int{}}
}

// withProcess sends a process's stderr output (run, exec) to errw.
func (p *printer) withProcess(errw io.Writer) *printer {
	p.stderr = errw
	return p
}

// withLines sends line answers to lw in json mode.
func (p *printer) withLines(lw io.Writer) *printer {
	if p.json {
		p.lines = lw
	}
	return p
}

// add renders or records one answer.
func (p *printer) add(a client.Answer) error {
	switch {
	case a.Output != nil:
		w := p.stdout
		if a.Output.FD == 2 {
			w = p.stderr
		}
		_, err := io.WriteString(w, a.Output.Data)
		return err
	case a.Exit != nil:
		code := *a.Exit
		p.exit = &code
		return nil
	case a.HasLine:
		p.sawLine = true
		if p.lines != p.w {
			_, err := io.WriteString(p.lines, a.Line+"\n")
			return err
		}
		return p.writeLine(a.Line)
	case p.json && a.Row != nil:
		return p.writeJSON(a.Row)
	case p.json && a.Event != nil:
		return p.writeJSON(a.Event)
	case a.Event != nil:
		return p.writeLine(formatEvent(a.Event))
	case a.Row != nil:
		cells := p.cells(a.Row)
		if p.streaming {
			return p.writeRow(cells)
		}
		p.rows = append(p.rows, cells)
	}
	return nil
}

// pending reports whether rows are waiting to be printed.
func (p *printer) pending() bool { return len(p.rows) > 0 }

// streamRows prints the rows held so far with a header and switches to
// printing each later row on arrival.
func (p *printer) streamRows() error {
	if p.streaming || p.json {
		return nil
	}
	p.streaming = true
	return p.flushTable()
}

// finish prints whatever rows are still held.
func (p *printer) finish() error {
	if p.streaming {
		return nil
	}
	return p.flushTable()
}

func (p *printer) flushTable() error {
	if len(p.rows) == 0 {
		return nil
	}
	header := make([]string, len(p.cols))
	for i, c := range p.cols {
		header[i] = strings.ToUpper(c)
	}
	p.widths = make([]int, len(p.cols))
	for _, r := range append([][]string{header}, p.rows...) {
		p.grow(r)
	}
	var buf bytes.Buffer
	p.appendRow(&buf, header)
	for _, r := range p.rows {
		p.appendRow(&buf, r)
	}
	p.rows = nil
	_, err := p.w.Write(buf.Bytes())
	return err
}

// writeRow prints one row in streaming mode.
func (p *printer) writeRow(cells []string) error {
	p.grow(cells)
	var buf bytes.Buffer
	p.appendRow(&buf, cells)
	_, err := p.w.Write(buf.Bytes())
	return err
}

func (p *printer) grow(cells []string) {
	for len(p.widths) < len(cells) {
		p.widths = append(p.widths, 0)
	}
	for i, c := range cells {
		p.widths[i] = max(p.widths[i], utf8.RuneCountInString(c))
	}
}

// appendRow writes cells padded to the column widths, two spaces apart,
// without trailing blanks.
func (p *printer) appendRow(buf *bytes.Buffer, cells []string) {
	line := make([]byte, 0, 80)
	for i := range p.cols {
		cell := ""
		if i < len(cells) {
			cell = cells[i]
		}
		if i > 0 {
			line = append(line, "  "...)
		}
		line = append(line, cell...)
		if i < len(p.cols)-1 {
			line = append(line, strings.Repeat(" ", p.widths[i]-utf8.RuneCountInString(cell))...)
		}
	}
	buf.Write(bytes.TrimRight(line, " "))
	buf.WriteByte('\n')
}

// cells turns a row into one cell per column, adding the columns it brings.
func (p *printer) cells(row json.RawMessage) []string {
	fields, ok := orderedFields(row)
	if !ok {
		fields = []field{{key: "value", raw: row}}
	}
	cells := make([]string, len(p.cols))
	for _, f := range fields {
		if _, known := p.colIndex[f.key]; !known && p.sawLine && len(f.raw) > 0 && (f.raw[0] == '[' || f.raw[0] == '{') {
			continue // a narrative answer (infra plan): the text showed it; -o json has it
		}
		i, known := p.colIndex[f.key]
		if !known {
			i = len(p.cols)
			p.colIndex[f.key] = i
			p.cols = append(p.cols, f.key)
			cells = append(cells, "")
		}
		cells[i] = formatCell(f.raw)
	}
	return cells
}

func (p *printer) writeJSON(obj json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, obj); err != nil {
		buf.Reset()
		buf.Write(obj)
	}
	buf.WriteByte('\n')
	_, err := p.w.Write(buf.Bytes())
	return err
}

func (p *printer) writeLine(s string) error {
	_, err := io.WriteString(p.w, s+"\n")
	return err
}

// field is one member of a JSON object, kept in document order.
type field struct {
	key string
	raw json.RawMessage
}

// orderedFields returns an object's members in the order they appear, which
// encoding/json's maps would lose. A repeated key keeps its first position
// and its last value. ok is false when obj is not an object.
func orderedFields(obj json.RawMessage) (fields []field, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	seen := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		if i, dup := seen[key]; dup {
			fields[i].raw = raw
			continue
		}
		seen[key] = len(fields)
		fields = append(fields, field{key: key, raw: raw})
	}
	return fields, true
}

// cellEscaper keeps a cell on one line.
var cellEscaper = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)

// formatCell renders a JSON value for a table: strings unquoted, null empty,
// objects and arrays as compact JSON, numbers and booleans as written.
func formatCell(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return cellEscaper.Replace(s)
		}
	case raw[0] == '{' || raw[0] == '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err == nil {
			return buf.String()
		}
	}
	return string(raw)
}

// eventTimeLayout is RFC 3339 in UTC with milliseconds.
const eventTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// formatEvent renders an event as one line:
//
//	SEQ  TIME  KIND  SUBJECT  actor=uid:U pid:P via:V  data=JSON
//
// with TIME in UTC to the millisecond, "-" for an empty subject, and the
// actor and data parts left out when the event has none. An answer that is
// not an event object is printed as compact JSON.
func formatEvent(raw json.RawMessage) string {
	var ev struct {
		Seq     json.Number     `json:"seq"`
		Time    json.RawMessage `json:"time"`
		Kind    string          `json:"kind"`
		Subject string          `json:"subject"`
		Actor   *struct {
			UID  *int64 `json:"uid"`
			PID  *int64 `json:"pid"`
			Via  string `json:"via"`
			Addr string `json:"addr"`
		} `json:"actor"`
		Data json.RawMessage `json:"data"`
		// The sysdig objects of capture events.
		Evt *struct {
			Type string `json:"type"`
		} `json:"evt"`
		Proc *struct {
			Name    string `json:"name"`
			Cmdline string `json:"cmdline"`
		} `json:"proc"`
		FD *struct {
			Name string `json:"name"`
		} `json:"fd"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return formatCell(raw)
	}
	if ev.Kind == "" {
		// Not a journal event but an engine's own (a kv watch row): its
		// members as name=value, in their order.
		fields, ok := orderedFields(raw)
		if !ok {
			return formatCell(raw)
		}
		parts := make([]string, 0, len(fields))
		for _, f := range fields {
			parts = append(parts, f.key+"="+cellEscaper.Replace(formatCell(f.raw)))
		}
		return strings.Join(parts, "  ")
	}
	subject := ev.Subject
	if subject == "" {
		subject = "-"
	}
	parts := []string{string(ev.Seq), formatTime(ev.Time), ev.Kind, cellEscaper.Replace(subject)}
	if a := ev.Actor; a != nil {
		var who []string
		if a.UID != nil {
			who = append(who, fmt.Sprintf("uid:%d", *a.UID))
		}
		if a.PID != nil {
			who = append(who, fmt.Sprintf("pid:%d", *a.PID))
		}
		if a.Via != "" {
			who = append(who, "via:"+a.Via)
		}
		if a.Addr != "" {
			who = append(who, "addr:"+a.Addr)
		}
		if len(who) > 0 {
			parts = append(parts, "actor="+strings.Join(who, " "))
		}
	}
	if ev.Evt != nil && ev.Evt.Type != "" {
		parts = append(parts, "evt="+ev.Evt.Type)
	}
	if p := ev.Proc; p != nil && (p.Name != "" || p.Cmdline != "") {
		cmd := p.Cmdline
		if cmd == "" {
			cmd = p.Name
		}
		parts = append(parts, "proc="+strconv.Quote(cmd))
	}
	if ev.FD != nil && ev.FD.Name != "" {
		parts = append(parts, "fd="+cellEscaper.Replace(ev.FD.Name))
	}
	if data := formatCell(ev.Data); data != "" && data != "{}" {
		parts = append(parts, "data="+data)
	}
	return strings.Join(parts, "  ")
}

// formatTime renders an event time given as RFC 3339 text or as Unix
// nanoseconds; anything else is shown as it came.
func formatTime(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Format(eventTimeLayout)
		}
		return s
	}
	var ns int64
	if err := json.Unmarshal(raw, &ns); err == nil {
		return time.Unix(0, ns).UTC().Format(eventTimeLayout)
	}
	if len(raw) == 0 {
		return "-"
	}
	return string(raw)
}
