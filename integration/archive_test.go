package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client/wire"
)

// cliIn runs the CLI in dir (so relative paths resolve there) as a client
// of d (nil: no daemon).
func cliIn(t *testing.T, d *daemonProc, dir string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := cliCommand(ctx, d, args...)
	cmd.Dir = dir
	return runCLI(t, cmd)
}

// cliInOK is cliIn requiring exit code 0.
func cliInOK(t *testing.T, d *daemonProc, dir string, args ...string) string {
	t.Helper()
	r := cliIn(t, d, dir, args...)
	if r.Code != 0 {
		t.Fatalf("cairn %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func exportTo(t *testing.T, d *daemonProc, dir string, args ...string) wire.ExportSummary {
	t.Helper()
	out := cliInOK(t, d, dir, append([]string{"-o", "json", "journal", "export"}, args...)...)
	rows := parseNDJSON[wire.ExportSummary](t, out)
	if len(rows) != 1 {
		t.Fatalf("journal export printed %q, want one summary row", out)
	}
	return rows[0]
}

// fillAudit writes a varied history: KV writes, a txn, a delete, a lease
// with a key, and n notes carrying size bytes of incompressible data each.
func fillAudit(t *testing.T, d *daemonProc, n, size int) {
	t.Helper()
	c := dial(t, d)
	for i := range 5 {
		do(t, c, fmt.Sprintf("kv put app/k%d v%d", i, i))
	}
	do(t, c, "kv del app/k0")
	do(t, c, `kv txn if 'value("app/k1") = "v1"' then 'put app/k1 changed' 'put app/txn yes'`)
	res := do(t, c, "lease grant 3600")
	var lease struct {
		ID string `json:"id"`
	}
	if len(res.Rows) != 1 || json.Unmarshal(res.Rows[0], &lease) != nil || lease.ID == "" {
		t.Fatalf("lease grant answered %s", res.Rows)
	}
	do(t, c, "kv put app/leased here lease="+lease.ID)
	buf := make([]byte, size/2)
	for i := range n {
		rand.Read(buf)
		emit(t, c, fmt.Sprintf("emit app.note n%d i=%d blob=%s", i%7, i, hex.EncodeToString(buf)))
	}
}

// TestArchiveExportRead: an export read back with `cairn read` (no daemon)
// gives the very events, filtered or not, and the same chisel output.
func TestArchiveExportRead(t *testing.T) {
	d := startDaemon(t)
	fillAudit(t, d, 40, 64)
	dir := t.TempDir()
	sum := exportTo(t, d, dir, "to=all.cairn")
	file := filepath.Join(dir, "all.cairn")
	if sum.File != file || sum.Files != 1 || sum.FirstSeq != 1 || sum.Events != sum.LastSeq || sum.Events < 50 {
		t.Fatalf("export summary %+v (want the whole stream into %s)", sum, file)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("to= is resolved against the CLI's directory: %v", err)
	}
	to := fmt.Sprint("to=", sum.LastSeq)
	for _, filters := range [][]string{
		nil,
		{"kind=kv.*"},
		{"subject=n3", "from=20"},
		{"where", `data.i > 10 && data.i < 30 && subject != "n2"`, "limit=7"},
		{"count"},
		{"kind=app.note", "count"},
	} {
		want := cliOK(t, d, append([]string{"-o", "json", "events", to}, filters...)...)
		got := cliInOK(t, nil, dir, append([]string{"-o", "json", "read", "all.cairn"}, filters...)...)
		if got != want {
			t.Errorf("read %v differs from events:\nread:\n%s\nevents:\n%s", filters, got, want)
		}
	}
	// The table output too.
	if got, want := cliInOK(t, nil, dir, "read", "all.cairn", "kind=kv.*"), cliOK(t, d, "events", "kind=kv.*", to); got != want {
		t.Errorf("read's table differs from events':\n%s\nvs\n%s", got, want)
	}
	// The same chisel output, run here and in the daemon.
	for _, ch := range [][]string{{"topkinds"}, {"counts_by", "subject"}} {
		want := cliOK(t, d, append([]string{"events", to, "|", "chisel"}, ch...)...)
		got := cliInOK(t, nil, dir, append([]string{"read", "all.cairn", "|", "chisel"}, ch...)...)
		if got != want || got == "" {
			t.Errorf("read | chisel %v:\n%s\nwant (the daemon's):\n%s", ch, got, want)
		}
	}
	// A capture file holds an unbroken chain: no selection by kind.
	r := cliIn(t, d, dir, "journal", "export", "kind=kv.*", "to=x.cairn")
	if r.Code != 2 || !strings.Contains(r.Stderr, "unbroken range") {
		t.Errorf("export kind=: exit %d, stderr %q; want 2 and an explanation", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.cairn")); err == nil {
		t.Error("a refused export wrote its file")
	}
}

// flipByte flips one bit of the byte at off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestArchiveDamage: a flipped byte is reported with its offset and exit
// code 1; salvage prints exactly the events before the damage.
func TestArchiveDamage(t *testing.T) {
	d := startDaemon(t)
	fillAudit(t, d, 300, 1500)
	dir := t.TempDir()
	sum := exportTo(t, d, dir, "to=all.cairn")
	file := filepath.Join(dir, "all.cairn")
	good := cliInOK(t, nil, dir, "-o", "json", "read", "all.cairn")
	if n := strings.Count(good, "\n"); int64(n) != sum.Events {
		t.Fatalf("read printed %d events, want %d", n, sum.Events)
	}
	flipByte(t, file, sum.Bytes*3/4)

	r := cliIn(t, nil, dir, "-o", "json", "read", "all.cairn")
	if r.Code != 1 || !strings.Contains(r.Stderr, "corrupt capture file at byte") {
		t.Fatalf("read of a damaged file: exit %d, stderr %q; want 1 and the offset", r.Code, r.Stderr)
	}
	r = cliIn(t, nil, dir, "-o", "json", "read", "all.cairn", "salvage")
	if r.Code != 1 || !strings.Contains(r.Stderr, "corrupt capture file at byte") || !strings.Contains(r.Stderr, "salvaged") {
		t.Fatalf("salvage: exit %d, stderr %q", r.Code, r.Stderr)
	}
	n := strings.Count(r.Stdout, "\n")
	if n == 0 || int64(n) >= sum.Events || !strings.HasPrefix(good, r.Stdout) {
		t.Fatalf("salvage printed %d events (of %d), not a prefix of the good file's", n, sum.Events)
	}
	// A count over a damaged file is only given with salvage.
	r = cliIn(t, nil, dir, "-o", "json", "read", "all.cairn", "count")
	if r.Code != 1 || r.Stdout != "" {
		t.Errorf("count of a damaged file: exit %d, stdout %q", r.Code, r.Stdout)
	}
	r = cliIn(t, nil, dir, "-o", "json", "read", "all.cairn", "salvage", "count")
	if r.Code != 1 || r.Stdout != fmt.Sprintf("{\"count\":%d}\n", n) {
		t.Errorf("salvage count: exit %d, stdout %q, want %d", r.Code, r.Stdout, n)
	}
	// Nothing of a damaged file is imported.
	before := d.requireServing().Audit.LastSeq
	r = cliIn(t, d, dir, "journal", "import", "all.cairn")
	if r.Code != 1 || !strings.Contains(r.Stderr, "nothing was imported") {
		t.Errorf("import of a damaged file: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if after := d.requireServing().Audit.LastSeq; after != before {
		t.Errorf("import of a damaged file moved the audit stream from %d to %d", before, after)
	}
}

// TestArchiveRotation: max-size splits an export into parts that each read
// alone and together give the whole export; max-files keeps a ring.
func TestArchiveRotation(t *testing.T) {
	d := startDaemon(t)
	fillAudit(t, d, 200, 1500)
	dir := t.TempDir()
	sum := exportTo(t, d, dir, "to=rot.cairn", "max-size=64KiB")
	if sum.Files < 3 {
		t.Fatalf("export with max-size=64KiB of %d bytes made %d files", sum.Bytes, sum.Files)
	}
	var all strings.Builder
	for i := range sum.Files {
		name := "rot.cairn"
		if i > 0 {
			name += fmt.Sprint(i)
		}
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if st.Size() > 64<<10 {
			t.Errorf("part %s has %d bytes, more than max-size", name, st.Size())
		}
		all.WriteString(cliInOK(t, nil, dir, "-o", "json", "read", name))
	}
	want := cliOK(t, d, "-o", "json", "events", fmt.Sprint("to=", sum.LastSeq))
	if all.String() != want {
		t.Errorf("the parts read in order differ from the events")
	}

	ring := exportTo(t, d, dir, "to=ring.cairn", "max-size=64KiB", "max-files=2")
	if ring.Files != 2 {
		t.Errorf("max-files=2 reports %d files", ring.Files)
	}
	for i, wantExist := range []bool{true, true, false} {
		name := filepath.Join(dir, "ring.cairn")
		if i > 0 {
			name += fmt.Sprint(i)
		}
		if _, err := os.Stat(name); (err == nil) != wantExist {
			t.Errorf("%s exists: %v, want %v", name, err == nil, wantExist)
		}
	}
}

// TestArchiveBackupRestore: an export of the whole audit stream restored
// into an empty data directory gives the same seqs, hashes and KV state.
func TestArchiveBackupRestore(t *testing.T) {
	a := startDaemon(t)
	fillAudit(t, a, 30, 64)
	dir := t.TempDir()
	sum := exportTo(t, a, dir, "to=backup.cairn")
	to := fmt.Sprint("to=", sum.LastSeq)
	wantEvents := cliOK(t, a, "-o", "json", "events", to)
	wantKV := cliOK(t, a, "-o", "json", "kv", "get", "", "prefix")
	wantLeases := parseNDJSON[map[string]any](t, cliOK(t, a, "-o", "json", "lease", "list"))

	b := newDaemon(t, withFlags("--restore", filepath.Join(dir, "backup.cairn")))
	b.start()
	gotEvents := cliOK(t, b, "-o", "json", "events", to)
	if gotEvents != wantEvents {
		t.Fatalf("restored events differ:\n%s\nwant:\n%s", gotEvents, wantEvents)
	}
	after := events(t, dial(t, b), fmt.Sprint("events from=", sum.LastSeq+1))
	if len(after) != 1 || after[0].Kind != "daemon.start" {
		t.Fatalf("after the restored events: %+v, want only the new daemon.start", after)
	}
	if got := cliOK(t, b, "-o", "json", "kv", "get", "", "prefix"); got != wantKV {
		t.Fatalf("restored KV:\n%s\nwant:\n%s", got, wantKV)
	}
	gotLeases := parseNDJSON[map[string]any](t, cliOK(t, b, "-o", "json", "lease", "list"))
	if len(gotLeases) != 1 || len(wantLeases) != 1 || gotLeases[0]["id"] != wantLeases[0]["id"] {
		t.Fatalf("restored leases %v, want %v", gotLeases, wantLeases)
	}
	cliOK(t, b, "journal", "verify")
	cliOK(t, b, "journal", "rebuild")
	if got := cliOK(t, b, "-o", "json", "kv", "get", "", "prefix"); got != wantKV {
		t.Fatalf("KV after rebuild:\n%s\nwant:\n%s", got, wantKV)
	}
	b.Stop()

	// A data directory that holds events is not restored into.
	r := runCLI(t, cliCommand(context.Background(), nil, "daemon", "--data", b.Data, "--socket", b.Socket, "--nats", "off", "--restore", filepath.Join(dir, "backup.cairn")))
	if r.Code != 1 || !strings.Contains(r.Stderr, "empty data directory") {
		t.Fatalf("restore into a used data directory: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestArchiveImportMustContinue: journal import refuses a file that does
// not continue the stream, and writes nothing.
func TestArchiveImportMustContinue(t *testing.T) {
	a := startDaemon(t)
	fillAudit(t, a, 5, 64)
	dir := t.TempDir()
	exportTo(t, a, dir, "to=a.cairn")
	exportTo(t, a, dir, "from=3", "to=6", "to=slice.cairn")

	other := startDaemon(t)
	for _, d := range []*daemonProc{a, other} {
		for _, f := range []string{"a.cairn", "slice.cairn"} {
			before := cliOK(t, d, "-o", "json", "journal", "stats")
			r := cliIn(t, d, dir, "journal", "import", f)
			if r.Code != 1 || !strings.Contains(r.Stderr, "failed_precondition") || !strings.Contains(r.Stderr, "continue the stream") {
				t.Errorf("import %s: exit %d, stderr %q; want 1 and failed_precondition", f, r.Code, r.Stderr)
			}
			if after := cliOK(t, d, "-o", "json", "journal", "stats"); after != before {
				t.Errorf("a refused import changed the journal:\n%s\nwas:\n%s", after, before)
			}
		}
	}
	// The daemon never opens a path a client names.
	c := dial(t, a)
	_, err := c.Do(context.Background(), "journal import /etc/passwd")
	if de := daemonError(t, "journal import /etc/passwd", err); de.Code != "invalid_argument" {
		t.Errorf("journal import FILE over the socket: %v", err)
	}
}

// TestInterruptedImportIsRecorded: an importer that sends a part with
// more and goes away leaves no imported event unattributed: the daemon
// writes the journal.import record (complete false) when the connection
// ends, naming the importer and the range that arrived.
func TestInterruptedImportIsRecorded(t *testing.T) {
	t.Parallel()
	a := startDaemon(t)
	dir := t.TempDir()
	if _, errOut, code := cli(t, a, "capture", "run", "--", "sh", "-c", "echo hi >/dev/null"); code != 0 {
		t.Fatalf("capture run: exit %d\n%s", code, errOut)
	}
	sum := exportTo(t, a, dir, "stream=capture", "to=cap.cairn")
	if sum.Events < 2 {
		t.Fatalf("capture export of %d events", sum.Events)
	}
	part, err := os.ReadFile(filepath.Join(dir, "cap.cairn"))
	if err != nil {
		t.Fatal(err)
	}

	b := startDaemon(t)
	c := dial(t, b)
	do(t, c, "journal import more force part="+base64.StdEncoding.EncodeToString(part))
	c.Close() // the importer goes away before its last part

	c = dial(t, b)
	var recs []wireEvent
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if recs = events(t, c, "events stream=capture kind=journal.import"); len(recs) > 0 {
			break
		}
	}
	if len(recs) != 1 {
		t.Fatalf("journal.import records after an interrupted import: %+v", recs)
	}
	d := recs[0].Data
	if d["complete"] != false || d["last_seq"] != float64(sum.LastSeq) || d["first_seq"] != float64(sum.FirstSeq) || recs[0].Actor.UID != os.Getuid() {
		t.Fatalf("the record of the interrupted import: %+v", recs[0])
	}
	if recs[0].Seq != sum.LastSeq+1 {
		t.Fatalf("the record is at seq %d, want right after the imported %d", recs[0].Seq, sum.LastSeq)
	}
	cliOK(t, b, "journal", "verify")
}
