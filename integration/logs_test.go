package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/vmihailenco/msgpack/v5"
)

// logRow is a row of `logs -o json`.
type logRow struct {
	Time   string         `json:"time"`
	Tag    string         `json:"tag"`
	Record map[string]any `json:"record"`
}

// forwardAddr is the daemon's bound --forward address, from status.
func forwardAddr(t *testing.T, d *daemonProc) (string, int) {
	t.Helper()
	addr := d.requireServing().Listeners["forward"]
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("status lists no forward listener (%q): %v", addr, err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func fluentClient(t *testing.T, host string, port int, cfg fluent.Config) *fluent.Fluent {
	t.Helper()
	cfg.FluentHost, cfg.FluentPort = host, port
	cfg.Timeout = 10 * time.Second
	f, err := fluent.New(cfg)
	if err != nil {
		t.Fatalf("fluent.New: %v", err)
	}
	return f
}

// sendRaw writes one forward message on a fresh connection and, when it
// asks for an ack, requires the ack of its chunk.
func sendRaw(t *testing.T, addr string, msg []byte, chunk string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	if chunk == "" {
		return
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ack map[string]string
	if err := msgpack.NewDecoder(conn).Decode(&ack); err != nil {
		t.Fatalf("reading the ack of %s: %v", chunk, err)
	}
	if ack["ack"] != chunk {
		t.Fatalf("ack %v, want %s", ack, chunk)
	}
}

// TestLogsForward sends records with fluent-logger-golang (sync, async,
// with RequestAck, with sub-second EventTime) and in the protocol's Forward,
// PackedForward and CompressedPackedForward modes, then finds every one
// with `logs` and with `events stream=logs where 'record.level == …'`.
func TestLogsForward(t *testing.T) {
	d := startDaemon(t)
	host, port := forwardAddr(t, d)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	want := map[string]bool{}
	post := func(f *fluent.Fluent, mode string, n int) {
		for i := range n {
			id := fmt.Sprintf("%s-%d", mode, i)
			level := "info"
			if i%2 == 0 {
				level = "error"
			}
			if err := f.Post("app."+mode, map[string]any{"id": id, "level": level, "n": i}); err != nil {
				t.Fatalf("%s post %d: %v", mode, i, err)
			}
			want[id] = level == "error"
		}
	}
	for _, c := range []struct {
		mode string
		cfg  fluent.Config
	}{
		{"sync", fluent.Config{}},
		{"async", fluent.Config{Async: true}},
		{"ack", fluent.Config{RequestAck: true}},
		{"subsec", fluent.Config{SubSecondPrecision: true, RequestAck: true}},
		{"json", fluent.Config{MarshalAsJSON: true, RequestAck: true}},
	} {
		f := fluentClient(t, host, port, c.cfg)
		post(f, c.mode, 10)
		if err := f.Close(); err != nil {
			t.Fatalf("%s close: %v", c.mode, err)
		}
	}

	// The other modes, encoded with the library's own types.
	now := time.Now().Unix()
	entries := func(mode string) []fluent.Entry {
		var es []fluent.Entry
		for i := range 10 {
			id := fmt.Sprintf("%s-%d", mode, i)
			level := "info"
			if i%2 == 0 {
				level = "error"
			}
			want[id] = level == "error"
			es = append(es, fluent.Entry{Time: now, Record: map[string]any{"id": id, "level": level}})
		}
		return es
	}
	fw := &fluent.Forward{Tag: "app.forward", Entries: entries("forward"), Option: map[string]string{"chunk": "c-forward"}}
	b, err := fw.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	sendRaw(t, addr, b, "c-forward")
	packed := func(mode string) []byte {
		var buf []byte
		for _, e := range entries(mode) {
			if buf, err = e.MarshalMsg(buf); err != nil {
				t.Fatal(err)
			}
		}
		return buf
	}
	b, _ = msgpack.Marshal([]any{"app.packed", packed("packed"), map[string]any{"chunk": "c-packed", "size": 10}})
	sendRaw(t, addr, b, "c-packed")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(packed("compressed"))
	zw.Close()
	b, _ = msgpack.Marshal([]any{"app.compressed", gz.Bytes(), map[string]any{"chunk": "c-comp", "size": 10, "compressed": "gzip"}})
	sendRaw(t, addr, b, "c-comp")

	// Every record with logs, tag and fields intact.
	rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=app.**"))
	got := map[string]logRow{}
	for _, r := range rows {
		id, _ := r.Record["id"].(string)
		if _, dup := got[id]; dup {
			t.Errorf("record %s answered twice", id)
		}
		got[id] = r
	}
	for id := range want {
		r, ok := got[id]
		if !ok {
			t.Errorf("record %s is missing from logs", id)
			continue
		}
		if mode, _, _ := strings.Cut(id, "-"); r.Tag != "app."+mode {
			t.Errorf("record %s has tag %q", id, r.Tag)
		}
	}
	if len(got) != len(want) {
		t.Errorf("logs answered %d records, want %d", len(got), len(want))
	}
	if r := got["subsec-3"]; !strings.Contains(r.Time, ".") {
		t.Errorf("an EventTime record lost its sub-second time: %q", r.Time)
	}
	// A tag pattern selects.
	if rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=app.{ack,packed}")); len(rows) != 20 {
		t.Errorf("tag=app.{ack,packed}: %d records, want 20", len(rows))
	}
	// CEL over the record, in events and in logs.
	var wantErr int
	for _, isErr := range want {
		if isErr {
			wantErr++
		}
	}
	evs := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "events", "stream=logs", "where", `record.level == "error"`))
	if len(evs) != wantErr {
		t.Errorf("events stream=logs where record.level == error: %d, want %d", len(evs), wantErr)
	}
	// The client's uid, found through the kernel (loopback): asked for a
	// client that waits for its acks, whose socket is still open when the
	// daemon looks (one that wrote and closed at once may be gone: uid -1).
	acked := parseNDJSON[struct {
		Actor struct {
			UID int    `json:"uid"`
			Via string `json:"via"`
		} `json:"actor"`
		Data struct {
			Source struct {
				UID *int `json:"uid"`
			} `json:"source"`
		} `json:"data"`
	}](t, cliOK(t, d, "-o", "json", "events", "stream=logs", "where", `tag == "app.ack"`))
	if len(acked) == 0 {
		t.Fatal("no app.ack records")
	}
	if a := acked[0].Actor; a.Via != "forward" || a.UID != os.Getuid() || acked[0].Data.Source.UID == nil || *acked[0].Data.Source.UID != os.Getuid() {
		t.Errorf("the forward client as actor: %+v, source uid %v", a, acked[0].Data.Source.UID)
	}
	if rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "where", `record.level == "error" && tag == "app.sync"`, "tail=2")); len(rows) != 2 || rows[1].Record["id"] != "sync-8" {
		t.Errorf("logs where … tail=2: %+v", rows)
	}
}

// TestLogsForwardBadInput sends what the forward input must refuse: it
// counts each, closes the connection where the stream cannot go on, and
// keeps serving.
func TestLogsForwardBadInput(t *testing.T) {
	d := startDaemon(t, withFlags("--forward-max-frame", "1048576"))
	host, port := forwardAddr(t, d)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	closed := func(what string, msg []byte) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write(msg)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		var b [1]byte
		if _, err := conn.Read(b[:]); err == nil {
			t.Errorf("%s: the daemon answered instead of closing", what)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the connection is still open", what)
		}
	}
	closed("invalid msgpack", []byte{0xc1, 0xc1, 0xc1})
	closed("not an array", []byte{0xa3, 'a', 'b', 'c'})
	// A bin32 declaring 100 MB, followed by 2 MB of it: refused at the
	// frame limit, not buffered.
	big := []byte{0x93, 0xa3, 'b', 'i', 'g', 0xc6, 0x05, 0xf5, 0xe1, 0x00}
	closed("a 100 MB frame", append(big, make([]byte, 2<<20)...))
	// A record that is not a map is skipped; the map beside it is kept.
	b, _ := msgpack.Marshal([]any{"bad.notmap", []any{[]any{1, "a string"}, []any{2, map[string]any{"ok": true}}}, map[string]any{"chunk": "x"}})
	sendRaw(t, addr, b, "x")

	stats := cliOK(t, d, "-o", "json", "logs", "stats")
	for _, want := range []string{`"counter":"invalid_msgpack"`, `"counter":"frame_too_large"`, `"counter":"not_a_map","value":1`} {
		if !strings.Contains(stats, want) {
			t.Errorf("logs stats lacks %s:\n%s", want, stats)
		}
	}
	if rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=bad.*")); len(rows) != 1 || rows[0].Record["ok"] != true {
		t.Errorf("the map beside a non-map: %+v", rows)
	}
	// Heartbeat: a UDP datagram on the forward port is answered.
	uc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.Write([]byte{0})
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hb [1]byte
	if _, err := uc.Read(hb[:]); err != nil {
		t.Errorf("no heartbeat answer: %v", err)
	}
	d.requireServing()
}

// TestLogsForwardKill SIGKILLs the daemon while clients send with
// RequestAck: after a restart, every record whose chunk was acked is in
// the logs stream.
func TestLogsForwardKill(t *testing.T) {
	d := startDaemon(t)
	host, port := forwardAddr(t, d)
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	const clients = 4
	enough := make(chan struct{})
	var once sync.Once
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: port, RequestAck: true, MaxRetry: 1, Timeout: 5 * time.Second, ReadTimeout: 10 * time.Second})
			if err != nil {
				return
			}
			defer f.Close()
			for i := 0; ; i++ {
				id := fmt.Sprintf("k%d-%d", c, i)
				if err := f.Post("load.kill", map[string]any{"id": id, "pad": strings.Repeat("x", 200)}); err != nil {
					return // the daemon is gone: this one was not acked
				}
				mu.Lock()
				acked = append(acked, id)
				if len(acked) >= 2000 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("clients did not get 2000 acks")
	}
	d.Kill()
	wg.Wait()
	d.start()
	rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=load.kill"))
	have := make(map[string]bool, len(rows))
	for _, r := range rows {
		id, _ := r.Record["id"].(string)
		have[id] = true
	}
	lost := 0
	for _, id := range acked {
		if !have[id] {
			lost++
			if lost < 5 {
				t.Errorf("acked record %s is not in the journal after SIGKILL", id)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acked records lost", lost, len(acked))
	}
	t.Logf("%d acked records before SIGKILL, all found (%d stored)", len(acked), len(rows))
}

// requireTool finds a program the test runs, failing under CI=true and
// skipping elsewhere when it is missing.
func requireTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (Debian %s)", name, pkg)
		}
		t.Skipf("%s is not installed (Debian %s)", name, pkg)
	}
}

// TestLogsSyslog sends with logger(1), RFC 5424 and RFC 3164, over UDP and
// TCP (newline framing and octet counting): each record arrives with its
// facility, severity, host, app and message, tagged
// syslog.FACILITY.SEVERITY; a line of neither RFC is counted.
func TestLogsSyslog(t *testing.T) {
	requireTool(t, "logger", "bsdutils")
	d := startDaemon(t, withFlags("--syslog", "127.0.0.1:0"))
	addr := d.requireServing().Listeners["syslog"]
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("status lists no syslog listener: %q", addr)
	}
	hostname, _ := os.Hostname()
	hostname, _, _ = strings.Cut(hostname, ".")
	type sent struct {
		args               []string
		msg, fac, sev, app string
		pid                string
	}
	cases := []sent{
		{[]string{"-d", "--rfc5424", "-p", "local3.warning", "-t", "app5u", "--msgid", "M1"}, "udp 5424 message", "local3", "warn", "app5u", ""},
		{[]string{"-d", "--rfc3164", "-p", "mail.err", "-t", "app3u", "--id=4242"}, "udp 3164 message", "mail", "err", "app3u", "4242"},
		{[]string{"-T", "--rfc5424", "-p", "daemon.info", "-t", "app5t"}, "tcp 5424 newline", "daemon", "info", "app5t", ""},
		{[]string{"-T", "--octet-count", "--rfc5424", "-p", "auth.crit", "-t", "app5o"}, "tcp 5424 octet counted", "auth", "crit", "app5o", ""},
		{[]string{"-T", "--rfc3164", "-p", "user.debug", "-t", "app3t"}, "tcp 3164 newline", "user", "debug", "app3t", ""},
	}
	for _, c := range cases {
		args := append([]string{"-n", host, "-P", port}, c.args...)
		if out, err := exec.Command("logger", append(args, c.msg)...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	uc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	uc.Write([]byte("this matches no syslog RFC"))
	uc.Close()

	var rows []logRow
	waitFor(t, "the syslog records", 20*time.Second, func() bool {
		out, _, _ := cli(t, d, "-o", "json", "logs", "tag=syslog.**")
		rows = parseNDJSON[logRow](t, out)
		return len(rows) >= len(cases)
	})
	if len(rows) != len(cases) {
		t.Fatalf("%d syslog records, want %d: %+v", len(rows), len(cases), rows)
	}
	byMsg := map[string]logRow{}
	for _, r := range rows {
		m, _ := r.Record["message"].(string)
		byMsg[m] = r
	}
	for _, c := range cases {
		r, ok := byMsg[c.msg]
		if !ok {
			t.Errorf("%q did not arrive: %+v", c.msg, rows)
			continue
		}
		if want := "syslog." + c.fac + "." + c.sev; r.Tag != want {
			t.Errorf("%q: tag %s, want %s", c.msg, r.Tag, want)
		}
		for k, v := range map[string]string{"facility": c.fac, "severity": c.sev, "ident": c.app, "host": hostname} {
			if r.Record[k] != v {
				t.Errorf("%q: %s = %v, want %s", c.msg, k, r.Record[k], v)
			}
		}
		if c.pid != "" && r.Record["pid"] != c.pid {
			t.Errorf("%q: pid %v, want %s", c.msg, r.Record["pid"], c.pid)
		}
	}
	if r := byMsg["udp 5424 message"]; r.Record["msgid"] != "M1" {
		t.Errorf("RFC 5424 msgid: %v", r.Record["msgid"])
	}
	waitFor(t, "the unparsed line counted", 10*time.Second, func() bool {
		out, _, _ := cli(t, d, "-o", "json", "logs", "stats")
		return strings.Contains(out, `{"input":"syslog","counter":"unparsed","value":1}`)
	})
}

// TestLogsTail follows a file across rename rotation and copytruncate and
// across a daemon SIGKILL: every line is stored exactly once.
func TestLogsTail(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	write := func(from, to int) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			fmt.Fprintf(f, "{\"n\":%d}\n", i)
		}
		f.Close()
	}
	stored := func() []int {
		out, _, _ := cli(t, d, "-o", "json", "logs", "tag=app.file")
		var ns []int
		for _, r := range parseNDJSON[logRow](t, out) {
			n, _ := r.Record["n"].(float64)
			ns = append(ns, int(n))
		}
		return ns
	}
	waitLines := func(what string, n int) {
		t.Helper()
		waitFor(t, what, 20*time.Second, func() bool { return len(stored()) >= n })
	}
	write(0, 10)
	cliOK(t, d, "logs", "tail", "add", path, "tag=app.file", "format=json", "pos=start")
	waitLines("the file's first lines", 10)

	// Rename rotation: lines written just before the rename are read from
	// the old file, then the new file from its start.
	write(10, 20)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(20, 30)
	waitLines("the lines around a rename rotation", 30)

	// copytruncate: the file is copied, then emptied in place.
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".2", data, 0o644)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write(30, 35)
	waitLines("the lines after copytruncate", 35)

	// A SIGKILLed daemon resumes after the last line stored.
	d.Kill()
	write(35, 40)
	d.start()
	waitLines("the lines written while the daemon was down", 40)
	ns := stored()
	for i, n := range ns {
		if n != i {
			t.Fatalf("line %d is n=%d (lost or duplicated):\n%v", i, n, ns)
		}
	}
	if len(ns) != 40 {
		t.Fatalf("%d lines stored, want 40: %v", len(ns), ns)
	}
	if out := cliOK(t, d, "events", "kind=logs.tail.*"); !strings.Contains(out, "logs.tail.add") {
		t.Errorf("no logs.tail.add event:\n%s", out)
	}
	if out := cliOK(t, d, "logs", "tail", "ls"); !strings.Contains(out, path) {
		t.Errorf("logs tail ls does not list %s:\n%s", path, out)
	}
	cliOK(t, d, "logs", "tail", "rm", path)
	if _, stderr, code := cli(t, d, "logs", "tail", "add", "relative.log", "tag=x"); code != 2 || !strings.Contains(stderr, "absolute") {
		t.Errorf("a relative path: exit %d, %s", code, stderr)
	}
}

// TestLogsRouteForward routes records to a forward output whose peer, a
// second cairn daemon, is down: they wait in the first daemon's logs
// stream (logs routes shows them queued and the output retrying), other
// routes go on, and once the peer is up it gets every record, once.
func TestLogsRouteForward(t *testing.T) {
	peer := startDaemon(t)
	_, peerPort := forwardAddr(t, peer)
	peer.Stop()
	peer.Forward = fmt.Sprintf("127.0.0.1:%d", peerPort)

	d := startDaemon(t)
	host, port := forwardAddr(t, d)
	out := filepath.Join(t.TempDir(), "rest.ndjson")
	cliOK(t, d, "logs", "route", "add", "errs", "match=app.**", "where", `record.level == "error"`,
		"to="+"forward:"+peer.Forward, "record.via=cairn-a")
	cliOK(t, d, "logs", "route", "add", "rest", "match=**", "to=file:"+out)

	f := fluentClient(t, host, port, fluent.Config{RequestAck: true})
	for i := range 20 {
		level := "info"
		if i%2 == 0 {
			level = "error"
		}
		if err := f.Post("app.web", map[string]any{"i": i, "level": level}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := f.Post("other.job", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	type routeRow struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Queued    int    `json:"queued"`
		Delivered int    `json:"delivered"`
		LastError string `json:"last_error"`
	}
	routes := func() map[string]routeRow {
		m := map[string]routeRow{}
		for _, r := range parseNDJSON[routeRow](t, cliOK(t, d, "-o", "json", "logs", "routes")) {
			m[r.Name] = r
		}
		return m
	}
	// The peer is down: the error records are queued, the output retries,
	// and the other route delivered its records all the same.
	waitFor(t, "the forward output to fail", 20*time.Second, func() bool {
		r := routes()["errs"]
		return r.State == "retrying" && r.Queued == 10
	})
	waitFor(t, "the file output", 20*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n") == 5
	})
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "app.web") {
		t.Errorf("a record the first route took reached the second:\n%s", b)
	}
	if rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=app.web")); len(rows) != 10 || rows[0].Record["via"] != "cairn-a" {
		t.Errorf("the route's where and record.via= in the journal: %+v", rows)
	}
	if ev := cliOK(t, d, "events", "kind=logs.output.*"); !strings.Contains(ev, "logs.output.fail") {
		t.Errorf("no logs.output.fail event:\n%s", ev)
	}

	// The peer comes up: everything arrives, once.
	peer.start()
	var got []logRow
	waitFor(t, "the peer to get the queued records", 60*time.Second, func() bool {
		o, _, _ := cli(t, peer, "-o", "json", "logs", "tag=app.web")
		got = parseNDJSON[logRow](t, o)
		return len(got) >= 10
	})
	seen := map[float64]bool{}
	for _, r := range got {
		i, _ := r.Record["i"].(float64)
		if seen[i] || r.Record["level"] != "error" || r.Record["via"] != "cairn-a" {
			t.Errorf("peer record %+v (duplicate, or not routed)", r)
		}
		seen[i] = true
	}
	if len(got) != 10 {
		t.Errorf("the peer has %d records, want 10", len(got))
	}
	waitFor(t, "the output to recover", 20*time.Second, func() bool {
		r := routes()["errs"]
		return r.State == "ok" && r.Queued == 0 && r.Delivered == 10
	})
	if ev := cliOK(t, d, "events", "kind=logs.output.*"); !strings.Contains(ev, "logs.output.recover") {
		t.Errorf("no logs.output.recover event:\n%s", ev)
	}
	// Routes and output cursors survive a SIGKILL: after a restart the
	// peer gets new records, and nothing twice.
	d.Kill()
	d.start()
	host, port = forwardAddr(t, d)
	f = fluentClient(t, host, port, fluent.Config{RequestAck: true})
	if err := f.Post("app.web", map[string]any{"i": 100, "level": "error"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitFor(t, "the record sent after the restart", 30*time.Second, func() bool {
		o, _, _ := cli(t, peer, "-o", "json", "logs", "tag=app.web")
		got = parseNDJSON[logRow](t, o)
		return len(got) >= 11
	})
	if len(got) != 11 {
		t.Errorf("after the restart the peer has %d records, want 11", len(got))
	}
	if r := routes(); len(r) != 2 || r["errs"].Delivered != 1 {
		t.Errorf("routes after the restart: %+v", r)
	}
	cliOK(t, d, "logs", "route", "rm", "errs")
	if ev := cliOK(t, d, "events", "kind=logs.route.*"); strings.Count(ev, "logs.route.add") != 2 || !strings.Contains(ev, "logs.route.rm") {
		t.Errorf("route events:\n%s", ev)
	}
}

// TestLogsHTTP posts records as Fluentd's in_http takes them (one object,
// an array, ?time=) on the daemon's HTTP listener, refuses a body that is
// not JSON, and counts records with the built-in chisels toptags and
// logs_by.
func TestLogsHTTP(t *testing.T) {
	d := startDaemon(t)
	base := "http://" + d.requireServing().HTTP + "/logs/"
	post := func(tag, query, body string) int {
		t.Helper()
		resp, err := http.Post(base+tag+query, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("app.http", "", `{"level":"error","msg":"one"}`); code != 200 {
		t.Fatalf("POST one record: %d", code)
	}
	if code := post("app.http", "?time=1700000000.5", `[{"level":"info","msg":"two"},{"level":"error","msg":"three"}]`); code != 200 {
		t.Fatalf("POST an array: %d", code)
	}
	// Fluentd's form: json= (curl -d 'json={…}').
	resp, err := http.PostForm(base+"app.other", url.Values{"json": {`{"level":"warn"}`}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST json= form: %d", resp.StatusCode)
	}
	for _, bad := range []string{`{"level":`, `"a string"`, `[1, 2]`, `{} {}`} {
		if code := post("app.http", "", bad); code != 400 {
			t.Errorf("POST %s: %d, want 400", bad, code)
		}
	}
	if code := post("app.http", "?time=yesterday", `{}`); code != 400 {
		t.Errorf("?time=yesterday: %d, want 400", code)
	}
	rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=app.http"))
	if len(rows) != 3 {
		t.Fatalf("%d records, want 3: %+v", len(rows), rows)
	}
	if rows[1].Record["msg"] != "two" || rows[1].Time != "2023-11-14T22:13:20.5Z" {
		t.Errorf("?time= record: %+v", rows[1])
	}
	evs := parseNDJSON[struct {
		Actor struct {
			Via string `json:"via"`
			UID int    `json:"uid"`
		} `json:"actor"`
	}](t, cliOK(t, d, "-o", "json", "events", "stream=logs", "where", `tag == "app.http"`))
	if len(evs) != 3 || evs[0].Actor.Via != "http" || evs[0].Actor.UID != os.Getuid() {
		t.Errorf("the HTTP caller as actor: %+v", evs)
	}
	if stats := cliOK(t, d, "-o", "json", "logs", "stats"); !strings.Contains(stats, `{"input":"http","counter":"bad_json","value":4}`) {
		t.Errorf("logs stats:\n%s", stats)
	}
	// follow: what is stored, then what comes, with the tag and where
	// applied to both.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := cliCommand(ctx, d, "-o", "json", "logs", "tag=app.*", "where", `record.level == "error"`, "follow")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	next := func() logRow {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("logs follow ended: %v", sc.Err())
		}
		var r logRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("logs follow: %q: %v", sc.Text(), err)
		}
		return r
	}
	if r := next(); r.Record["msg"] != "one" {
		t.Errorf("follow's first stored record: %+v", r)
	}
	if r := next(); r.Record["msg"] != "three" {
		t.Errorf("follow's second stored record: %+v", r)
	}
	post("app.late", "", `{"level":"info","msg":"not this"}`)
	post("app.late", "", `{"level":"error","msg":"late"}`)
	if r := next(); r.Record["msg"] != "late" || r.Tag != "app.late" {
		t.Errorf("follow's live record: %+v", r)
	}
	cancel()
	cmd.Wait()

	out := cliOK(t, d, "chisel", "toptags")
	if !regexp.MustCompile(`(?m)^3\s+app\.http$`).MatchString(out) || !regexp.MustCompile(`(?m)^1\s+app\.other$`).MatchString(out) {
		t.Errorf("chisel toptags:\n%s", out)
	}
	out = cliOK(t, d, "chisel", "logs_by", "level")
	if !regexp.MustCompile(`(?m)^3\s+error$`).MatchString(out) || !regexp.MustCompile(`(?m)^1\s+warn$`).MatchString(out) {
		t.Errorf("chisel logs_by level:\n%s", out)
	}
}

// TestLogsContainerTag reads a container's output through the one logs
// verb both ways: as docker logs (stdout and stderr on the CLI's own) and
// as records tagged container.NAME, which filters see as {log, source}.
func TestLogsContainerTag(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	cliOK(t, d, "run", "busybox", "name=echoer", "network=none", "--", "sh", "-c", "echo hello; echo oops >&2")
	stdout, stderr, code := cli(t, d, "logs", "echoer")
	if code != 0 || stdout != "hello\n" || stderr != "oops\n" {
		t.Fatalf("logs echoer: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	rows := parseNDJSON[logRow](t, cliOK(t, d, "-o", "json", "logs", "tag=container.*"))
	if len(rows) != 2 || rows[0].Tag != "container.echoer" || rows[0].Record["container_name"] != "echoer" {
		t.Fatalf("logs tag=container.*: %+v", rows)
	}
	evs := cliOK(t, d, "-o", "json", "events", "stream=logs", "where", `tag == "container.echoer" && record.source == "stderr" && record.log == "oops"`)
	if strings.Count(evs, "\n") != 1 {
		t.Errorf("a container line by tag and record:\n%s", evs)
	}
	if _, stderr, code := cli(t, d, "logs", "nosuch"); code == 0 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("logs nosuch: exit %d, %s", code, stderr)
	}
	cliOK(t, d, "rm", "echoer")
}

// TestLogsRouteBacklogCap holds a forward output's backlog to its cap
// (--logs-output-backlog) while the peer is down: the oldest records are
// dropped and counted, and the peer, once up, gets the newest.
func TestLogsRouteBacklogCap(t *testing.T) {
	peer := startDaemon(t)
	_, peerPort := forwardAddr(t, peer)
	peer.Stop()
	peer.Forward = fmt.Sprintf("127.0.0.1:%d", peerPort)

	d := startDaemon(t, withFlags("--logs-output-backlog", "5"))
	host, port := forwardAddr(t, d)
	cliOK(t, d, "logs", "route", "add", "capped", "match=app.**", "to=forward:"+peer.Forward)
	f := fluentClient(t, host, port, fluent.Config{RequestAck: true})
	for i := range 20 {
		if err := f.Post("app.web", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	type routeRow struct {
		Dropped int `json:"dropped"`
		Queued  int `json:"queued"`
	}
	waitFor(t, "the backlog held to its cap", 20*time.Second, func() bool {
		rows := parseNDJSON[routeRow](t, cliOK(t, d, "-o", "json", "logs", "routes"))
		return len(rows) == 1 && rows[0].Dropped == 15 && rows[0].Queued == 5
	})
	peer.start()
	var got []logRow
	waitFor(t, "the newest records at the peer", 60*time.Second, func() bool {
		o, _, _ := cli(t, peer, "-o", "json", "logs", "tag=app.web")
		got = parseNDJSON[logRow](t, o)
		return len(got) >= 5
	})
	if len(got) != 5 || got[0].Record["i"] != float64(15) || got[4].Record["i"] != float64(19) {
		t.Errorf("the peer got %+v, want records 15 to 19", got)
	}
}

// TestLogsForwardBusyPort: a --forward address that is taken stops the
// daemon with a message naming the flag; --forward off opens nothing.
func TestLogsForwardBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := newDaemon(t)
	d.Forward = ln.Addr().String()
	d.launch()
	select {
	case <-d.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon kept running with its --forward address taken")
	}
	if d.State.ExitCode() == 0 {
		t.Fatalf("daemon exited %v with its --forward address taken, want a failure", d.State)
	}
	if log := d.Log(); !strings.Contains(log, "--forward "+ln.Addr().String()) || !strings.Contains(log, "address already in use") {
		t.Fatalf("the daemon's message does not name --forward and the address in use:\n%s", log)
	}

	off := newDaemon(t)
	off.Forward = "off"
	off.start()
	if addr, ok := off.Status.Listeners["forward"]; ok {
		t.Errorf("--forward off lists %s", addr)
	}
	off.Stop()
}
