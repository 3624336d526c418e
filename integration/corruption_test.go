package integration

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/client"
)

// TestDamagedSSTableIsDataLoss flips one byte in a data block of an audit
// sstable. Reading past it answers data_loss naming the last intact seq and
// the file (not internal with a Go stack), journal verify names the first
// bad seq, and the daemon keeps serving. Finding 11 of the hardening issue.
func TestDamagedSSTableIsDataLoss(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	big := strings.Repeat("x", 3000)
	// About 9 MiB: more than the audit memtable holds, so sstables exist.
	for i := range 3000 {
		emit(t, c, fmt.Sprintf("emit app.big k/%d v=%s", i, big))
	}
	c.Close()
	d.Stop()

	biggest := flipBiggest(t, filepath.Join(d.Data, "audit", "*.sst"), 100<<10)

	d.Restart()
	c = dial(t, d)
	_, err := c.Do(t.Context(), "events count")
	var de *client.DaemonError
	if !errors.As(err, &de) || de.Code != "data_loss" {
		t.Fatalf("events over a damaged sstable: %v, want data_loss", err)
	}
	if !strings.Contains(de.Message, filepath.Base(biggest)) || !strings.Contains(de.Message, "the event after seq") || strings.Contains(de.Message, "goroutine") || strings.Contains(de.Message, "stack trace") {
		t.Errorf("data_loss message does not name the seq and the file, or carries a stack:\n%s", de.Message)
	}
	out, errOut, code := cli(t, d, "journal", "verify")
	if code == 0 || !strings.Contains(out+errOut, "first bad seq") || !strings.Contains(out+errOut, "damaged") {
		t.Errorf("journal verify over a damaged sstable: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, d, "status"); code != 0 {
		t.Fatalf("status after data loss: exit %d: %s", code, errOut)
	}
}

// TestJournalRepairAfterWALDamage: a byte flipped in the middle of the
// audit stream's write-ahead log after a SIGKILL (so the events live in
// it only) stops the daemon from starting, with a message that names
// journal repair, instead of silently starting without the events after
// the damage. `cairn journal repair` keeps the whole batches before the
// damage, sets the log aside and records the cut; the daemon then starts,
// its chain verifies, and it takes writes again. Finding 11.
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

func TestJournalRepairAfterWALDamage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	pad := strings.Repeat("p", 300)
	var last int64
	for i := range 400 {
		last = emit(t, c, fmt.Sprintf("emit app.wal w/%d i=%d pad=%s", i, i, pad)).Seq
	}
	c.Close()
	d.Kill()

	wals, _ := filepath.Glob(filepath.Join(d.Data, "audit", "*.log"))
	var wal string
	var size, fileSize int64
	for _, p := range wals {
		if end := walDataEnd(t, p); end > size {
			wal, size = p, end
			if fi, err := os.Stat(p); err == nil {
				fileSize = fi.Size()
			}
		}
	}
	if size < 64<<10 {
		t.Fatalf("no audit WAL holding the events (found %v)", wals)
	}
	flipByte(t, wal, size/2)

	d.launch()
	if err := d.WaitExit(30 * time.Second); err != nil {
		t.Fatalf("the daemon started over a WAL damaged in its middle: %v", err)
	}
	if log := d.Log(); !strings.Contains(log, "journal repair") || !strings.Contains(log, filepath.Base(wal)) {
		t.Fatalf("the start failure does not name the log and journal repair:\n%s", log)
	}

	out := cliOK(t, d, "-o", "json", "journal", "repair", "data="+d.Data)
	type repairRow struct {
		Stream    string `json:"stream"`
		Status    string `json:"status"`
		WAL       string `json:"wal"`
		Kept      int    `json:"kept_batches"`
		LostFound string `json:"lost_found"`
	}
	var audit repairRow
	for _, r := range parseNDJSON[repairRow](t, out) {
		if r.Stream == "audit" {
			audit = r
		}
	}
	if audit.Status != "repaired" || audit.WAL != filepath.Base(wal) || audit.Kept == 0 {
		t.Fatalf("repair of the audit stream: %+v\n%s", audit, out)
	}
	if fi, err := os.Stat(filepath.Join(audit.LostFound, filepath.Base(wal))); err != nil || fi.Size() != fileSize {
		t.Fatalf("the damaged log is not in lost+found as it was: %v", err)
	}

	d.Restart()
	c = dial(t, d)
	if out, errOut, code := cli(t, d, "journal", "verify"); code != 0 {
		t.Fatalf("journal verify after repair: exit %d\n%s%s", code, out, errOut)
	}
	reps := events(t, c, "events kind=journal.repair")
	if len(reps) != 1 || reps[0].Subject != "audit" || reps[0].Actor.Via != "cli" {
		t.Fatalf("journal.repair events: %+v", reps)
	}
	all := events(t, c, "events")
	requireGapless(t, all, 1)
	if kept := reps[0].Seq - 1; kept >= last {
		t.Errorf("repair kept seqs up to %d of %d: the damage lost nothing?", kept, last)
	}
	emit(t, c, "emit app.wal after")
	if out, errOut, code := cli(t, d, "journal", "verify"); code != 0 {
		t.Fatalf("journal verify after a new write: exit %d\n%s%s", code, out, errOut)
	}
}

// TestDamagedBlobFileIsDataLoss: the logs stream keeps its 1 KiB records
// in pebble's blob files (value separation); a byte flipped in one is
// data_loss naming the file for the reads that reach it, and journal
// verify reports it, as a damaged sstable is.
func TestDamagedBlobFileIsDataLoss(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, port := forwardAddr(t, d)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	// Incompressible records, so that the blob file is mostly them.
	rnd := rand.New(rand.NewPCG(5, 6))
	for m := range 10 {
		var entries []byte
		for i := range 200 {
			msg := make([]byte, 600)
			for k := range msg {
				msg[k] = byte(rnd.Uint32())
			}
			e, err := msgpack.Marshal([]any{int64(1700000000), map[string]any{"i": m*200 + i, "msg": fmt.Sprintf("%x", msg)}})
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e...)
		}
		chunk := fmt.Sprint("c", m)
		b, err := msgpack.Marshal([]any{"app.blob", entries, map[string]any{"chunk": chunk}})
		if err != nil {
			t.Fatal(err)
		}
		sendRaw(t, addr, b, chunk)
	}
	d.Stop() // flushes the memtable: the records go to blob files

	biggest := flipBiggest(t, filepath.Join(d.Data, "logs", "*.blob"), 1<<20)

	d.Restart()
	c := dial(t, d)
	_, err := c.Do(t.Context(), "events stream=logs where 'record.i >= 0' count")
	var de *client.DaemonError
	if !errors.As(err, &de) || de.Code != "data_loss" {
		t.Fatalf("events over a damaged blob file: %v, want data_loss", err)
	}
	if !strings.Contains(de.Message, filepath.Base(biggest)) || strings.Contains(de.Message, "goroutine") {
		t.Errorf("data_loss message does not name the file %s, or carries a stack:\n%s", filepath.Base(biggest), de.Message)
	}
	out, errOut, code := cli(t, d, "journal", "verify", "stream=logs")
	if code == 0 || !strings.Contains(out+errOut, "damaged") {
		t.Errorf("journal verify over a damaged blob file: exit %d\n%s%s", code, out, errOut)
	}
}

// flipBiggest flips a byte in the middle of the biggest file glob finds,
// failing the test when it is smaller than min bytes, and returns its path.
func flipBiggest(t *testing.T, glob string, min int64) string {
	t.Helper()
	files, _ := filepath.Glob(glob)
	var biggest string
	var size int64
	for _, p := range files {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	if size < min {
		t.Fatalf("no file of %s to damage (found %v)", glob, files)
	}
	flipByte(t, biggest, size/2)
	return biggest
}
