package archive

import (
	"bytes"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// memFiles is what a client's create callback would do with files: index i
// is PartName(FILE, i), and creating it replaces what it held.
type memFiles struct {
	files   map[int]*memFile
	creates int
}

type memFile struct {
	bytes.Buffer
	closed bool
}

func (f *memFile) Close() error { f.closed = true; return nil }

func (m *memFiles) create(i int) (io.WriteCloser, error) {
	if m.files == nil {
		m.files = map[int]*memFile{}
	}
	m.creates++
	f := &memFile{}
	m.files[i] = f
	return f, nil
}

func rotate(t *testing.T, evs []*journal.Raw, maxSize int64, maxFiles int) *memFiles {
	t.Helper()
	var m memFiles
	w := NewRotating(m.create, Header{Node: "n", Stream: journal.Audit, Created: time.Unix(1, 0)}, maxSize, maxFiles)
	for _, e := range evs {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Parts() != m.creates {
		t.Fatalf("Parts() = %d, %d created", w.Parts(), m.creates)
	}
	for i, f := range m.files {
		if !f.closed {
			t.Fatalf("part %d not closed", i)
		}
	}
	return &m
}

// readParts verifies each part alone and returns their events in seq
// order, checking that each part's header hangs from the one before.
func readParts(t *testing.T, files map[int]*memFile) []*journal.Raw {
	t.Helper()
	type part struct {
		h   Header
		evs []*journal.Raw
	}
	var parts []part
	for i, f := range files {
		h, evs, err := readAll(f.Bytes(), Options{})
		if err != nil {
			t.Fatalf("part %d alone: %v", i, err)
		}
		parts = append(parts, part{h, evs})
	}
	slices.SortFunc(parts, func(a, b part) int { return int(a.h.FirstSeq - b.h.FirstSeq) })
	var all []*journal.Raw
	for i, p := range parts {
		if len(p.evs) == 0 {
			t.Fatalf("part %d is empty", i)
		}
		if i > 0 {
			prev := all[len(all)-1]
			if p.h.FirstSeq != prev.Seq+1 || p.h.Anchor != prev.Hash() {
				t.Fatalf("part %d starts at %d anchored at %s; previous part ends at %d with %s",
					i, p.h.FirstSeq, p.h.Anchor, prev.Seq, prev.Hash())
			}
		}
		all = append(all, p.evs...)
	}
	return all
}

func TestRotation(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 20000)
	maxFrame := 0
	for _, e := range evs {
		maxFrame = max(maxFrame, eventFrameLen(len(e.Record)))
	}
	const maxSize = 64 << 10
	m := rotate(t, evs, maxSize, 0)
	if len(m.files) < 5 {
		t.Fatalf("only %d parts", len(m.files))
	}
	for i := range len(m.files) {
		size := m.files[i].Len()
		if size > maxSize {
			t.Errorf("part %d: %d bytes, over %d", i, size, maxSize)
		}
		if i < len(m.files)-1 && size < maxSize-maxFrame-300 {
			t.Errorf("part %d: %d bytes, rotated more than an event (%d) before %d", i, size, maxFrame, maxSize)
		}
	}
	t.Logf("%d events in %d parts of at most %d bytes", len(evs), len(m.files), maxSize)
	all := readParts(t, m.files)
	if len(all) != len(evs) {
		t.Fatalf("parts hold %d events, wrote %d", len(all), len(evs))
	}
	samePrefix(t, all, evs)
	// The first part names the chain's start, as a plain Writer does.
	if h, _, _ := readAll(m.files[0].Bytes(), Options{}); h.FirstSeq != 1 || h.Anchor != (journal.Hash{}) {
		t.Fatalf("first part header %+v", h)
	}

	// As a ring of 3, only the last 3 parts remain, byte for byte.
	ring := rotate(t, evs, maxSize, 3)
	if len(ring.files) != 3 || ring.creates != len(m.files) {
		t.Fatalf("ring: %d files after %d parts", len(ring.files), ring.creates)
	}
	n := len(m.files)
	for i := n - 3; i < n; i++ {
		if !bytes.Equal(ring.files[i%3].Bytes(), m.files[i].Bytes()) {
			t.Fatalf("ring slot %d is not part %d", i%3, i)
		}
	}
	tail := readParts(t, ring.files)
	if tail[len(tail)-1].Seq != evs[len(evs)-1].Seq {
		t.Fatalf("ring ends at seq %d", tail[len(tail)-1].Seq)
	}
	samePrefix(t, tail, evs[tail[0].Seq-1:])
}

// TestRotationTinyParts holds one event per part when one event is bigger
// than the limit.
func TestRotationTinyParts(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 20)
	m := rotate(t, evs, 100, 0)
	if len(m.files) != 20 {
		t.Fatalf("%d parts for 20 events over the limit", len(m.files))
	}
	samePrefix(t, readParts(t, m.files), evs)
}

func TestRotationRefuses(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 200)
	var m memFiles
	w := NewRotating(m.create, Header{Node: "n", Stream: journal.Audit, FirstSeq: 1}, 1024, 0)
	if err := w.Write(evs[1]); err == nil {
		t.Fatal("accepted seq 2 first")
	}
	if m.creates != 0 {
		t.Fatal("a refused first event created a part")
	}
	for _, e := range evs[:100] {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	creates := m.creates
	for _, e := range []*journal.Raw{evs[100+1], evs[50], evs[150]} {
		if err := w.Write(e); err == nil {
			t.Fatalf("accepted seq %d after 100", e.Seq)
		}
	}
	if m.creates != creates {
		t.Fatal("a refused event started a part")
	}
	for _, e := range evs[100:] {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	samePrefix(t, readParts(t, m.files), evs)
	if got := len(readParts(t, m.files)); got != 200 {
		t.Fatalf("%d events", got)
	}
}

func TestRotationEmpty(t *testing.T) {
	var m memFiles
	w := NewRotating(m.create, Header{Node: "n", Stream: journal.Audit, FirstSeq: 5, Anchor: journal.Hash{1}}, 1024, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h, n, err := Verify(bytes.NewReader(m.files[0].Bytes()))
	if err != nil || n != 0 || h.FirstSeq != 5 || len(m.files) != 1 {
		t.Fatalf("empty export: %+v %d %v (%d files)", h, n, err, len(m.files))
	}
}

func TestPartName(t *testing.T) {
	for i, want := range []string{"x.cairn", "x.cairn1", "x.cairn2"} {
		if got := PartName("x.cairn", i); got != want {
			t.Errorf("PartName(x.cairn, %d) = %q, want %q", i, got, want)
		}
	}
}
