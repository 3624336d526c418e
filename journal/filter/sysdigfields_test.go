package filter

import (
	"testing"

	"github.com/cairnhq/cairn/journal"
)

// TestSysdigFieldValues reads sysdig's names off a traced read and a
// write to syslog's socket, through the FieldGetter chisels use and
// through CEL on both paths (the stored record and the decoded event).
func TestSysdigFieldValues(t *testing.T) {
	ev := &journal.Event{Stream: journal.Capture, Seq: 7, Time: 1e18, Body: journal.Body{
		Kind: "capture.syscall", Subject: "pid/9",
		Evt:  &journal.Evt{Type: "sendto", Time: 1e18 + 5, Res: 27},
		Proc: &journal.Proc{Name: "logger", PID: 9, PPID: 1, Cmdline: "logger -t app hello there", TID: 9, PName: "sh"},
		FD:   &journal.FD{Name: "/dev/log", Type: "unix"},
		Data: map[string]any{"fd": int64(3), "io_dir": "w", "bytes": int64(27), "data": []byte("<13>Dec  5 10:00:00 app: hi\n")},
	}}
	fx := newFixture(t, "syslog", ev)
	for name, want := range map[string]any{
		"syslog.facility": int64(1), "syslog.facility.str": "user", "syslog.severity": int64(5),
		"syslog.severity.str": "notice", "syslog.message": "Dec  5 10:00:00 app: hi\n",
		"evt.num": int64(7), "evt.dir": "<", "evt.rawarg.res": int64(27), "evt.is_io_write": true, "evt.is_io_read": false,
		"fd.num": int64(3), "fd.typechar": "u", "fd.sockfamily": "unix", "proc.args": "-t app hello there",
		"thread.vtid": int64(9), "proc.pname": "sh", "evt.buflen": int64(27), "evt.arg.fd": int64(3),
		"evt.args": "res=27 fd=3(<u>/dev/log) bytes=27 data=<13>Dec  5 10:00:00 app: hi.", "evt.failed": false,
		"evt.datetime": "2001-09-09 01:46:40.000000005", "evt.rawtime.ns": int64(5),
	} {
		g, err := Field(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, ok := g.Get(fx.raw); !ok || got != want {
			t.Errorf("%s = %#v (%v), want %#v", name, got, ok, want)
		}
	}
	for _, expr := range []string{`syslog.severity.str == "notice" && syslog.facility == 1`, `evt.is_io && !evt.failed && fd.typechar == "u"`} {
		f, err := Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		if !f.MatchRaw(fx.raw) || !f.MatchEvent(fx.ev) {
			t.Errorf("%s does not match both ways", expr)
		}
	}
	for _, name := range []string{"syslog.severity", "evt.buffer"} { // a read of a file: no syslog
		ev.FD = &journal.FD{Name: "/etc/hosts", Type: "file"}
		ev.Data = map[string]any{"io_dir": "r", "bytes": int64(3)}
		g, _ := Field(name)
		if v, ok := g.Get(newFixture(t, "file", ev).raw); ok {
			t.Errorf("%s on a file read = %v", name, v)
		}
	}
}

// TestProcinfoFields: a resource sample is sysdig's procinfo event, whose
// thread.cpu is the share of a core used since the previous sample.
func TestProcinfoFields(t *testing.T) {
	ev := &journal.Event{Stream: journal.Capture, Seq: 3, Time: 1e18, Body: journal.Body{
		Kind: "capture.sample", Subject: "pid/9",
		Evt:  &journal.Evt{Time: 1e18},
		Proc: &journal.Proc{Name: "busy", PID: 9},
		Data: map[string]any{"cpu_s": 3.0, "cpu_delta_s": 0.5, "elapsed_s": 2.0},
	}}
	raw := newFixture(t, "sample", ev).raw
	for name, want := range map[string]any{"thread.cpu": 25.0, "thread.exectime": int64(5e8)} {
		g, err := Field(name)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := g.Get(raw); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	f, err := Compile(`thread.cpu > 20.0 && !has(evt.type)`)
	if err != nil {
		t.Fatal(err)
	}
	if !f.MatchRaw(raw) {
		t.Error("thread.cpu > 20.0 does not match a sample at 25%")
	}
}
