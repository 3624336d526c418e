package logtail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// collected is what a test's emit saw, copied out of the batches.
type collected struct {
	lines   []Line
	batches int
}

func (c *collected) emit(batch []Line) error {
	c.batches++
	for _, l := range batch {
		l.Text = bytes.Clone(l.Text)
		c.lines = append(c.lines, l)
	}
	return nil
}

func (c *collected) texts() []string {
	var s []string
	for _, l := range c.lines {
		s = append(s, string(l.Text))
	}
	return s
}

// appendFile opens path as the daemon opens a container's output file.
func appendFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func write(t testing.TB, f *os.File, s string) {
	t.Helper()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestFollowWriterProcess follows a shell printing 100000 lines into the
// file and sees each exactly once, in order, while a committer goroutine
// releases what was emitted, as the daemon's journal does.
func TestFollowWriterProcess(t *testing.T) {
	const n = 100000
	path := filepath.Join(t.TempDir(), "stdout")
	out := appendFile(t, path)
	cmd := exec.Command("sh", "-c", "for i in $(seq 1 "+strconv.Itoa(n)+"); do echo line $i; done")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tl, err := Open(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	committed := make(chan int64, 16)
	released := make(chan error, 1)
	go func() {
		var err error
		for off := range committed {
			if err == nil {
				err = tl.Release(off)
			}
		}
		released <- err
	}()
	next, batches := 1, 0
	var fail error
	err = tl.Follow(ctx, func(batch []Line) error {
		batches++
		for _, l := range batch {
			want := "line " + strconv.Itoa(next)
			if string(l.Text) != want || l.Partial {
				fail = fmt.Errorf("line %d: got %q (partial %v), want %q", next, l.Text, l.Partial, want)
				cancel()
				return fail
			}
			next++
		}
		committed <- batch[len(batch)-1].Offset
		if next > n {
			cancel()
		}
		return nil
	})
	close(committed)
	if fail != nil {
		t.Fatal(fail)
	}
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if err := <-released; err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if next != n+1 {
		t.Fatalf("saw %d lines, want %d", next-1, n)
	}
	t.Logf("%d lines in %d batches", n, batches)
}

// TestResume drains, keeps the offset, and later sees only what was
// written after it.
func TestResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	write(t, f, "one\ntwo\nthr")

	var first collected
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Follow on an ended context emits what is there and returns
	tl, err := Open(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Follow(ctx, first.emit); err != nil {
		t.Fatal(err)
	}
	tl.Close()
	if got := strings.Join(first.texts(), ","); got != "one,two" || tl.Offset() != 8 {
		t.Fatalf("first follow saw %q up to %d, want one,two up to 8 (the unfinished line kept)", got, tl.Offset())
	}

	write(t, f, "ee\nfour\nfive")
	var rest collected
	end, err := Drain(path, tl.Offset(), rest.emit)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rest.texts(), ","); got != "three,four,five" || end != 23 {
		t.Fatalf("drain from 8 saw %q up to %d, want three,four,five up to 23", got, end)
	}
	if l := rest.lines[1]; l.Offset != 19 {
		t.Errorf("offset after four = %d, want 19", l.Offset)
	}
}

func TestLongLines(t *testing.T) {
	const max = 16 << 10
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	long := strings.Repeat("a", 2*max+100)
	exact := strings.Repeat("b", max)
	write(t, f, long+"\n"+exact+"\nshort\n")

	var c collected
	end, err := Drain(path, 0, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	type part struct {
		len     int
		offset  int64
		partial bool
	}
	want := []part{
		{max, max, true},
		{max, 2 * max, true},
		{100, 2*max + 101, false},
		{max, 3*max + 102, false},
		{5, 3*max + 108, false},
	}
	var got []part
	for _, l := range c.lines {
		got = append(got, part{len(l.Text), l.Offset, l.Partial})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || end != 3*max+108 {
		t.Errorf("parts %v up to %d\nwant  %v", got, end, want)
	}
}

// TestLongLineInPieces writes a long line a little at a time while
// following: the parts are cut where they are cut when it arrives whole.
func TestLongLineInPieces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	tl, err := Open(path, 0, Options{MaxLine: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	var c collected
	for _, piece := range []string{"0123456", "789", "0123", "456789", "\nx", "y\n"} {
		write(t, f, piece)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := tl.Follow(ctx, c.emit); err != nil {
			t.Fatal(err)
		}
	}
	want := "[{0123456789 10 true} {0123456789 21 false} {xy 24 false}]"
	var got []string
	for _, l := range c.lines {
		got = append(got, fmt.Sprintf("{%s %d %v}", l.Text, l.Offset, l.Partial))
	}
	if s := "[" + strings.Join(got, " ") + "]"; s != want {
		t.Errorf("lines %s\nwant  %s", s, want)
	}
}

func TestEmitErrorKeepsBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	write(t, f, "a\nb\n")
	tl, err := Open(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	errFull := errors.New("journal full")
	if _, err := tl.Drain(func([]Line) error { return errFull }); !errors.Is(err, errFull) {
		t.Fatalf("Drain = %v, want the emit error", err)
	}
	if tl.Offset() != 0 {
		t.Fatalf("offset %d after a failed emit, want 0", tl.Offset())
	}
	var c collected
	if end, err := tl.Drain(c.emit); err != nil || end != 4 || strings.Join(c.texts(), ",") != "a,b" {
		t.Fatalf("retry: %q up to %d, %v", c.texts(), end, err)
	}
}

func TestOpenBeyondEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	write(t, appendFile(t, path), "abc\n")
	if _, err := Open(path, 5, Options{}); err == nil {
		t.Error("Open accepted an offset beyond the end")
	}
}

func blocks(t testing.TB, path string) (size, allocated int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

// TestReleasePunchesHoles frees the disk behind the released offset in
// whole 64 KiB chunks while the file keeps its size.
func TestReleasePunchesHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	line := strings.Repeat("x", 99) + "\n"
	write(t, f, strings.Repeat(line, 10000)) // 1,000,000 bytes
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	size0, alloc0 := blocks(t, path)
	if alloc0 < size0 {
		t.Fatalf("the new file has %d bytes on disk for %d written; the test needs a filesystem that allocates them", alloc0, size0)
	}

	tl, err := Open(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	if err := tl.Release(1); err == nil {
		t.Error("Release beyond what was emitted succeeded")
	}
	end, err := tl.Drain(func([]Line) error { return nil })
	if err != nil || end != size0 {
		t.Fatalf("Drain = %d, %v; want %d", end, err, size0)
	}
	if err := tl.Release(700000); err != nil {
		t.Fatal(err)
	}
	size1, alloc1 := blocks(t, path)
	// 700000 rounds down to 10 chunks of 64 KiB.
	if size1 != size0 || alloc0-alloc1 < 10*punchChunk || alloc1 > alloc0-10*punchChunk+4096 {
		t.Errorf("after Release(700000): size %d (was %d), on disk %d (was %d); want the same size and 655360 bytes freed", size1, size0, alloc1, alloc0)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[10*punchChunk:], []byte(strings.Repeat(line, 10000))[10*punchChunk:]) || b[0] != 0 {
		t.Error("the hole is not zeros, or the data after it changed")
	}
	if err := tl.Release(end); err != nil {
		t.Fatal(err)
	}
	if _, alloc2 := blocks(t, path); alloc2 > alloc0-15*punchChunk+4096 {
		t.Errorf("after Release(%d): %d bytes on disk, want at most the last partial chunk", end, alloc2)
	}
}

// TestBoundedMemoryAndDisk follows a writer of 100 MB, releasing as it
// goes: the heap stays within a few MiB and so does the file on disk.
func TestBoundedMemoryAndDisk(t *testing.T) {
	const total = 100 << 20
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	tl, err := Open(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	// The writer writes 655 numbered 100-byte lines (64 KiB at most) a
	// write, reusing its buffer, until it has written 100 MB.
	const perWrite = 64 << 10 / 100
	const lines = (total + perWrite*100 - 1) / (perWrite * 100) * perWrite
	go func() {
		chunk := make([]byte, 0, perWrite*100)
		for i := 0; i < lines; {
			chunk = chunk[:0]
			for range perWrite {
				chunk = appendNumbered(chunk, i)
				i++
			}
			if _, err := f.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak, allocated := ms.HeapInuse, ms.HeapInuse, ms.TotalAlloc
	next, batches := 0, 0
	expect := make([]byte, 0, 100)
	var fail error
	err = tl.Follow(ctx, func(batch []Line) error {
		for _, l := range batch {
			if want := appendNumbered(expect[:0], next); !bytes.Equal(l.Text, want[:len(want)-1]) {
				fail = fmt.Errorf("line %d: got %q", next, l.Text)
				cancel()
				return fail
			}
			next++
		}
		if err := tl.Release(batch[len(batch)-1].Offset); err != nil {
			fail = err
			cancel()
			return err
		}
		if batches++; batches%200 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		if next == lines {
			cancel()
		}
		return nil
	})
	if fail != nil {
		t.Fatal(fail)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	allocated = ms.TotalAlloc - allocated
	size, alloc := blocks(t, path)
	t.Logf("%d lines, %d batches; heap in use %d KiB before, peak %d KiB, %d KiB allocated in all; file %d MB, %d KiB on disk",
		next, batches, base>>10, peak>>10, allocated>>10, size>>20, alloc>>10)
	if next != lines {
		t.Errorf("saw %d lines, want %d", next, lines)
	}
	// The read buffer is allocated by Open, before base was measured.
	if peak > base+1<<20 || allocated > 1<<20 {
		t.Errorf("heap in use grew from %d to %d KiB, %d KiB allocated, following 100 MB", base>>10, peak>>10, allocated>>10)
	}
	if alloc > 4<<20 {
		t.Errorf("%d KiB on disk after releasing all but the tail of %d MB", alloc>>10, size>>20)
	}
}

// appendNumbered appends line i of TestBoundedMemoryAndDisk: i in 99
// digits, zero-padded, and a newline, without allocating.
func appendNumbered(b []byte, i int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(i), 10)
	for range 99 - len(d) {
		b = append(b, '0')
	}
	b = append(b, d...)
	return append(b, '\n')
}

// BenchmarkFollow follows a writer printing b.N lines of 80 bytes in 4
// KiB writes, as a container's buffered stdout does, and reports lines/s.
func BenchmarkFollow(b *testing.B) {
	path := filepath.Join(b.TempDir(), "stdout")
	f := appendFile(b, path)
	tl, err := Open(path, 0, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tl.Close()
	line := []byte(strings.Repeat("x", 79) + "\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	b.ResetTimer()
	go func() {
		chunk := make([]byte, 0, 4096)
		for i := 0; i < b.N; {
			chunk = chunk[:0]
			for ; i < b.N && len(chunk)+len(line) <= cap(chunk); i++ {
				chunk = append(chunk, line...)
			}
			if _, err := f.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	seen := 0
	err = tl.Follow(ctx, func(batch []Line) error {
		seen += len(batch)
		if seen == b.N {
			cancel()
		}
		return nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if seen != b.N {
		b.Fatalf("saw %d lines of %d", seen, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestFollowWakesAndStops: an idle Follow wakes for a write, and returns
// promptly when its context ends, having emitted the complete lines.
func TestFollowWakesAndStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	f := appendFile(t, path)
	write(t, f, "")
	tl, err := Open(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- tl.Follow(ctx, func(batch []Line) error {
			for _, l := range batch {
				seen <- string(l.Text)
			}
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond) // let Follow reach its wait
	write(t, f, "a\n")
	select {
	case got := <-seen:
		if got != "a" {
			t.Fatalf("got %q, want a", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an idle Follow did not wake for a write")
	}
	write(t, f, "b\nunfinished")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after its context ended")
	}
	close(seen)
	var rest []string
	for s := range seen {
		rest = append(rest, s)
	}
	if strings.Join(rest, ",") != "b" || tl.Offset() != 4 {
		t.Errorf("after cancel: %q up to %d, want b up to 4", rest, tl.Offset())
	}
}

// BenchmarkFollowStop measures how long an idle Follow takes to return
// once its context ends: the end of a container's output waits for it
// (a `run rm -- true` answers only after). Closing the inotify instance
// in line made this 10-20 ms here (the kernel's SRCU grace period).
func BenchmarkFollowStop(b *testing.B) {
	path := filepath.Join(b.TempDir(), "stdout")
	appendFile(b, path)
	var total time.Duration
	for b.Loop() {
		tl, err := Open(path, 0, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		waiting := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			// Follow's first read finds nothing; the emit-free wait
			// follows, which the cancel below ends.
			close(waiting)
			done <- tl.Follow(ctx, func([]Line) error { return nil })
		}()
		<-waiting
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		tl.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/stop")
}
