package journal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeUnflushed appends n events, one batch each, to the audit stream of
// a journal in dir, in a child process that is then killed with SIGKILL:
// pebble holds them in its WAL only, as after a crash.
func writeUnflushed(t *testing.T, dir string, n int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUnflushedWriter$")
	cmd.Env = append(os.Environ(), "CAIRN_UNFLUSHED_DIR="+dir, "CAIRN_UNFLUSHED_N="+strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil || line != "written\n" {
		t.Fatalf("writer: %q %v", line, err)
	}
	wals, err := walFiles(vfs.Default, filepath.Join(dir, Audit))
	if err != nil || len(wals) == 0 {
		t.Fatalf("no WAL in the audit stream: %v", err)
	}
	return filepath.Join(dir, Audit, wals[len(wals)-1].name)
}

// TestHelperUnflushedWriter is writeUnflushed's child process.
func TestHelperUnflushedWriter(t *testing.T) {
	dir := os.Getenv("CAIRN_UNFLUSHED_DIR")
	if dir == "" {
		t.Skip("the child process of writeUnflushed")
	}
	n, _ := strconv.Atoi(os.Getenv("CAIRN_UNFLUSHED_N"))
	opts := testOptions(vfs.Default)
	opts.Dir = dir
	j := mustOpen(t, opts)
	s := j.Stream(Audit)
	for i := range n {
		mustAppend(t, s, body("test.emit", "a", map[string]any{"i": int64(i), "pad": strings.Repeat("x", 200)}))
	}
	fmt.Println("written")
	select {} // until killed
}

// walDataEnd is the offset just past a write-ahead log's last non-zero
// byte: the journal extends a WAL over its preallocated space
// (journal/walfile.go), whose zeros are not written data.
func walDataEnd(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return int64(end)
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// TestRepairCutsADamagedWAL: a byte flipped in the middle of a WAL stops
// the journal from opening, with a message that names the repair; Repair
// keeps every whole batch before the damage, sets the original aside, and
// the journal then opens with an unbroken chain up to the damage.
func TestRepairCutsADamagedWAL(t *testing.T) {
	dir := t.TempDir()
	wal := writeUnflushed(t, dir, 400)
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	end := walDataEnd(t, wal)
	flipByte(t, wal, end/2)

	opts := testOptions(vfs.Default)
	opts.Dir = dir
	if j, err := Open(opts); err == nil || !strings.Contains(err.Error(), "journal repair") {
		if j != nil {
			t.Logf("tip %d", j.Stream(Audit).DurableSeq())
		}
		t.Fatalf("open of a damaged WAL: %v; want an error naming journal repair", err)
	}
	reps, err := Repair(dir, time.Unix(1e9, 0), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	var audit RepairReport
	for _, r := range reps {
		if r.Stream == Audit {
			audit = r
		} else if r.Status != RepairIntact {
			t.Errorf("stream %s: %+v", r.Stream, r)
		}
	}
	if audit.Status != RepairRepaired || audit.Kept == 0 || audit.Offset == 0 || audit.Offset >= end {
		t.Fatalf("audit report: %+v (WAL held %d bytes)", audit, end)
	}
	if saved, err := os.Stat(filepath.Join(audit.LostFound, filepath.Base(wal))); err != nil || saved.Size() != fi.Size() {
		t.Fatalf("the damaged WAL was not kept whole in lost+found: %v", err)
	}

	j := mustOpen(t, opts)
	s := j.Stream(Audit)
	tip := s.DurableSeq()
	if tip == 0 || tip >= 400 {
		t.Fatalf("tip after repair = %d; want some but not all of 400", tip)
	}
	rep, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("verify after repair: %v (%+v)", err, rep)
	}
	raws := collect(t, s.Scan(Query{}))
	if int64(len(raws)) != tip || raws[len(raws)-1].Seq != tip {
		t.Fatalf("%d events readable, tip %d", len(raws), tip)
	}
	// The stream takes writes again, chained to what was kept.
	mustAppend(t, s, body("test.emit", "after", nil))
	if _, err := s.Verify(t.Context()); err != nil {
		t.Fatalf("verify after a new write: %v", err)
	}

	if _, err := Repair(dir, time.Unix(2e9, 0), quietLogger()); err == nil || !strings.Contains(err.Error(), "daemon") {
		t.Fatalf("repair of an open journal: %v; want an error saying to stop the daemon", err)
	}
	j.Close()
	again, err := Repair(dir, time.Unix(2e9, 0), quietLogger())
	if err != nil {
		t.Fatalf("second repair: %v", err)
	}
	for _, r := range again {
		if r.Status != RepairIntact {
			t.Fatalf("second repair: %+v", r)
		}
	}
}

// TestTornWALTailNeedsNoRepair: a WAL cut short mid-record (power lost
// during a write) opens as it is, losing only the torn batch.
func TestTornWALTailNeedsNoRepair(t *testing.T) {
	dir := t.TempDir()
	wal := writeUnflushed(t, dir, 50)
	if err := os.Truncate(wal, walDataEnd(t, wal)-100); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(vfs.Default)
	opts.Dir = dir
	j := mustOpen(t, opts)
	tip := j.Stream(Audit).DurableSeq()
	j.Close()
	if tip != 49 {
		t.Fatalf("tip after a torn tail = %d; want 49", tip)
	}
	reps, err := Repair(dir, time.Now(), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.Status != RepairIntact {
			t.Fatalf("%+v", r)
		}
	}
}
