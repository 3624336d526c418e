package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestSizedWALFile: a log's size runs ahead of its data a MiB at a time,
// pebble's own preallocation moves nothing, and other files are left as
// they are.
func TestSizedWALFile(t *testing.T) {
	dir := t.TempDir()
	fs := sizedWALFS{vfs.Default}
	f, err := fs.Create(filepath.Join(dir, "000001.log"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Preallocate(0, 70<<20); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{7}, 4<<10)
	size := func() int64 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for written := int64(0); written < 3*walExtend/2; written += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if want := (written + int64(len(chunk)) + walExtend - 1) / walExtend * walExtend; size() != want {
			t.Fatalf("after %d bytes the log is %d bytes long; want %d", written+int64(len(chunk)), size(), want)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if end := walDataEnd(t, filepath.Join(dir, "000001.log")); end != 3*walExtend/2 {
		t.Fatalf("data ends at %d; want %d", end, 3*walExtend/2)
	}

	g, err := fs.Create(filepath.Join(dir, "MANIFEST-000001"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	g.Write(chunk)
	if fi, _ := g.Stat(); fi.Size() != int64(len(chunk)) {
		t.Fatalf("a file that is no log was extended to %d bytes", fi.Size())
	}
	g.Close()
}

// TestJournalOverSizedWALs: a journal opened again over logs whose size
// runs ahead of their data finds every event and nothing after them, and
// its chain verifies.
func TestJournalOverSizedWALs(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(vfs.Default)
	opts.Dir = dir
	j := mustOpen(t, opts)
	s := j.Stream(Audit)
	pad := strings.Repeat("x", 8<<10)
	for range 200 {
		mustAppend(t, s, body("test.emit", "wal", map[string]any{"pad": pad}))
	}
	wals, err := filepath.Glob(filepath.Join(dir, Audit, "*.log"))
	if err != nil || len(wals) == 0 {
		t.Fatalf("no audit WAL: %v", err)
	}
	fi, err := os.Stat(wals[len(wals)-1])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size()%walExtend != 0 {
		t.Fatalf("the newest log is %d bytes: not extended by the journal", fi.Size())
	}
	j.Close()

	j = mustOpen(t, opts)
	defer j.Close()
	s = j.Stream(Audit)
	if got := s.DurableSeq(); got != 200 {
		t.Fatalf("after reopening: tip %d, want 200", got)
	}
	if _, err := s.Verify(t.Context()); err != nil {
		t.Fatalf("verify: %v", err)
	}
	mustAppend(t, s, body("test.emit", "wal", nil))
}

// countingFile counts the writes that reach the file.
type countingFile struct {
	vfs.File
	writes int
}

func (c *countingFile) Write(p []byte) (int, error) { c.writes++; return c.File.Write(p) }

// TestSizedWALFileGathersBlocks: writes that end on a block boundary are
// held and go out with the next write that does not, or at a sync or
// Close, in one write; what reaches the file is what pebble wrote, in
// order, even though pebble reuses its buffers as soon as Write returns.
func TestSizedWALFileGathersBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "000001.log")
	inner, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{File: inner}
	f := newSizedWALFile(cf)
	var want []byte
	buf := make([]byte, walBlock)
	write := func(n int, b byte) {
		t.Helper()
		p := buf[:n]
		for i := range p {
			p[i] = b
		}
		if m, err := f.Write(p); err != nil || m != n {
			t.Fatalf("write %d: %d %v", n, m, err)
		}
		want = append(want, p...)
		clear(p) // as pebble reuses a block's buffer
	}
	check := func(writes int) {
		t.Helper()
		if cf.writes != writes {
			t.Fatalf("%d writes reached the file, want %d", cf.writes, writes)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
			t.Fatalf("the file does not hold the %d bytes written", len(want))
		}
	}

	write(walBlock, 1) // three whole blocks: held
	write(walBlock, 2)
	write(walBlock, 3)
	if cf.writes != 0 {
		t.Fatalf("%d writes of whole blocks reached the file, want them held", cf.writes)
	}
	write(1000, 4) // the current block's part: one write of all four
	check(1)
	write(walBlock-1000, 5) // the rest of that block, queued later: held
	if err := f.SyncData(); err != nil {
		t.Fatal(err)
	}
	check(2)
	write(100, 6) // nothing held: written as it comes
	check(3)
	write(walBlock-100, 7)
	for range 40 { // past walHoldMax: written without waiting for a part
		write(walBlock, 8)
	}
	if cf.writes < 4 {
		t.Fatalf("%d writes after 41 whole blocks: more than walHoldMax held", cf.writes)
	}
	write(walBlock, 9)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check(cf.writes)
}
