package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

func TestRoundTrip(t *testing.T) {
	anchor := journal.Hash{0xaa, 0xbb}
	evs := makeChain(t, 1000, anchor, 3000)
	created := time.Date(2026, 12, 1, 8, 0, 0, 123, time.UTC)
	file := writeFile(t, Header{Node: "host-1", Stream: journal.Audit, Created: created}, evs)

	for _, o := range []Options{{}, {SkipHashes: true}, {Salvage: true}} {
		h, got, err := readAll(file, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		want := Header{Version: FormatVersion, Node: "host-1", Stream: journal.Audit, FirstSeq: 1001, Created: created, Anchor: anchor}
		if h != want {
			t.Fatalf("header = %+v, want %+v", h, want)
		}
		if len(got) != len(evs) {
			t.Fatalf("%+v: read %d events, wrote %d", o, len(got), len(evs))
		}
		samePrefix(t, got, evs)
	}
	h, n, err := Verify(bytes.NewReader(file))
	if err != nil || n != 3000 || h.FirstSeq != 1001 {
		t.Fatalf("Verify = %+v, %d, %v", h, n, err)
	}
	t.Logf("%d events: %d bytes, %d uncompressed", len(evs), len(file), len(plaintext(t, file)))
}

// TestRoundTripDeclaredRange writes with FirstSeq and LastSeq known up front.
func TestRoundTripDeclaredRange(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 50)
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit, FirstSeq: 1, LastSeq: 50}, evs)
	h, got, err := readAll(file, Options{})
	if err != nil || len(got) != 50 || h.FirstSeq != 1 || h.LastSeq != 50 {
		t.Fatalf("read: %+v, %d events, %v", h, len(got), err)
	}
}

func TestEmptyFile(t *testing.T) {
	anchor := journal.Hash{7}
	file := writeFile(t, Header{Node: "n", Stream: journal.Capture, FirstSeq: 42, Anchor: anchor}, nil)
	h, n, err := Verify(bytes.NewReader(file))
	if err != nil || n != 0 || h.FirstSeq != 42 || h.Anchor != anchor || h.Stream != journal.Capture {
		t.Fatalf("Verify = %+v, %d, %v", h, n, err)
	}
}

func TestWriterRefuses(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 10)
	other := makeChain(t, 3, journal.Hash{9}, 1)[0] // seq 4, wrong prev
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Node: "n", Stream: journal.Audit, FirstSeq: 1, LastSeq: 10})
	if err != nil {
		t.Fatal(err)
	}
	mustRefuse := func(r *journal.Raw, what string) {
		t.Helper()
		if err := w.Write(r); err == nil {
			t.Fatalf("%s: accepted", what)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	mustRefuse(evs[1], "seq 2 first")
	for _, e := range evs[:3] {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	mustRefuse(evs[4], "gap")
	mustRefuse(evs[2], "repeat")
	mustRefuse(other, "bad prev")
	capture := evs[3].Clone()
	capture.Stream = journal.Capture
	mustRefuse(capture, "other stream")
	mustRefuse(&journal.Raw{Stream: journal.Audit, Seq: 4, Record: []byte{1, 2}}, "short record")
	for _, e := range evs[3:] {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	beyond := makeChain(t, 0, journal.Hash{}, 11)[10]
	mustRefuse(beyond, "beyond LastSeq")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The refusals left the file as if they had not happened.
	if _, n, err := Verify(bytes.NewReader(buf.Bytes())); err != nil || n != 10 {
		t.Fatalf("Verify = %d, %v", n, err)
	}

	// A promised LastSeq that is not reached fails Close, and the file
	// says so too.
	buf.Reset()
	w, _ = NewWriter(&buf, Header{Node: "n", Stream: journal.Audit, LastSeq: 10})
	for _, e := range evs[:5] {
		w.Write(e)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close accepted a short range")
	}
	if _, _, err := Verify(bytes.NewReader(buf.Bytes())); !isCorrupt(err) {
		t.Fatalf("Verify of a short range = %v", err)
	}
}

func isCorrupt(err error) bool {
	var ce *CorruptError
	return errors.As(err, &ce)
}

// TestFlippedByte flips bytes of the file itself at many positions: every
// one must be reported, none may pass or panic, and a salvage returns only
// good events.
func TestFlippedByte(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 2000)
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit}, evs)
	rng := rand.New(rand.NewPCG(1, 2))
	positions := []int{}
	for i := 0; i < 64 && i < len(file); i++ {
		positions = append(positions, i, len(file)-1-i)
	}
	for range 600 {
		positions = append(positions, rng.IntN(len(file)))
	}
	for _, pos := range positions {
		f := bytes.Clone(file)
		f[pos] ^= byte(1 << rng.IntN(8))
		_, got, err := readAll(f, Options{Salvage: true})
		if err == nil {
			t.Fatalf("flip at %d: not detected", pos)
		}
		var ce *CorruptError
		if !errors.As(err, &ce) {
			if pos == len(Magic) && errors.Is(err, ErrVersion) {
				continue
			}
			t.Fatalf("flip at %d: %v is not a *CorruptError", pos, err)
		}
		if ce.Offset < 0 || ce.FileOffset < 0 || ce.FileOffset > int64(len(f)) {
			t.Fatalf("flip at %d: bad offsets in %v", pos, ce)
		}
		samePrefix(t, got, evs)
		if len(got) > 0 && ce.Seq != got[len(got)-1].Seq+1 {
			t.Fatalf("flip at %d: error at seq %d after seq %d", pos, ce.Seq, got[len(got)-1].Seq)
		}
	}
}

// TestTamperedPlaintext edits the decompressed stream — a byte of every
// part of a record, the framing, the header and the footer — and
// recompresses it with a valid trailer, as an attacker would. The damage is
// reported at the frame it is in, and a salvage returns exactly the events
// before it.
func TestTamperedPlaintext(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 500)
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit}, evs)
	plain := plaintext(t, file)
	starts := frameStarts(t, plain)
	if len(starts) != len(evs)+2 {
		t.Fatalf("%d frames for %d events", len(starts), len(evs))
	}
	footer := starts[len(starts)-1]
	check := func(name string, pos, wantFrame int, o Options) {
		t.Helper()
		p := bytes.Clone(plain)
		p[pos] ^= 0x20
		_, got, err := readAll(recompress(t, p), o)
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("%s (byte %d): err = %v, want *CorruptError", name, pos, err)
		}
		samePrefix(t, got, evs)
		wantOff := int64(preludeLen + starts[wantFrame])
		wantEvents := wantFrame - 1 // frame 0 is the header
		if wantFrame == 0 {
			wantEvents = 0
		}
		if o.SkipHashes && !o.Salvage {
			return // detected at the footer at the latest: checked by the caller
		}
		if ce.Offset != wantOff || len(got) != wantEvents {
			t.Fatalf("%s (byte %d): %v after %d events; want offset %d after %d events", name, pos, ce, len(got), wantOff, wantEvents)
		}
		if wantFrame > 0 && ce.Seq != int64(wantFrame) {
			t.Fatalf("%s: error names seq %d, want %d", name, ce.Seq, wantFrame)
		}
	}
	for _, k := range []int{1, 2, 250, 499, 500} { // event frames (frame k holds seq k)
		s := starts[k]
		rec := s + 1 + 2 + 8 // type, uvarint length (2 bytes here), seq
		if plain[s+2]&0x80 != 0 || plain[s+1]&0x80 == 0 {
			t.Fatalf("frame %d: expected a 2-byte length", k)
		}
		for _, c := range []struct {
			name string
			pos  int
		}{
			{"frame type", s}, {"frame length", s + 1}, {"seq", s + 3 + 7},
			{"record version", rec}, {"time", rec + 8}, {"prev", rec + 9 + 5},
			{"hash", rec + 41 + 31}, {"body", rec + 73 + 3}, {"body end", starts[k+1] - 1},
		} {
			check(c.name, c.pos, k, Options{})
			check(c.name, c.pos, k, Options{Salvage: true, SkipHashes: true})
		}
	}
	// The header's framing and seqs are checked at once; its node and
	// creation time, which no event hash covers, by the footer's SHA-256.
	for _, pos := range []int{0, 1, 2, 5, 10, starts[1] - 1} {
		p := bytes.Clone(plain)
		p[pos] ^= 0x20
		_, got, err := readAll(recompress(t, p), Options{Salvage: true})
		if !isCorrupt(err) || len(got) != 0 {
			t.Fatalf("header byte %d: %d events, %v", pos, len(got), err)
		}
	}
	// The node and creation time are in no event's hash: an edit that
	// also recomputes the file's CRC changes them and nothing else (the
	// events still verify). Accidental damage to them is caught by the CRC
	// (TestFlippedByte).
	for _, pos := range []int{3 + len(journal.Audit) + 1, starts[1] - 33 - 2} { // node, created
		p := bytes.Clone(plain)
		p[pos] ^= 0x20
		h, got, err := readAll(recompress(t, p), Options{})
		if err != nil || len(got) != len(evs) || h.Node == "n" && h.Created.Equal(testCreatedOf(t, file)) {
			t.Fatalf("header byte %d: %+v, %d events, %v", pos, h, len(got), err)
		}
	}
	for pos := footer; pos < len(plain); pos += 7 {
		check("footer", pos, len(starts)-1, Options{})
	}

	// Without hash verification, a changed body whose editor recomputed
	// the file's CRC is not seen: that is what SkipHashes trades.
	p := bytes.Clone(plain)
	p[starts[100]+1+2+8+73+3] ^= 0x20
	if _, got, err := readAll(recompress(t, p), Options{SkipHashes: true}); err != nil || len(got) != len(evs) {
		t.Fatalf("SkipHashes on a changed body: %d events, %v", len(got), err)
	}

	// An attacker who also fixes the event's hash breaks the next link.
	p = bytes.Clone(plain)
	rec := p[starts[100]+1+2+8 : starts[101]]
	rec[73+3] ^= 0x20
	ev := journal.Raw{Stream: journal.Audit, Seq: 100, Record: rec}
	h := ev.ComputeHash()
	copy(rec[41:73], h[:])
	_, got, err := readAll(recompress(t, p), Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || len(got) != 100 || ce.Seq != 101 || !strings.Contains(ce.Reason, "prev") {
		t.Fatalf("rehashed event: %d events, %v", len(got), err)
	}
}

// TestTruncated cuts the file at many lengths: always a *CorruptError,
// never a panic or a silent success, and a salvage returns a prefix.
func TestTruncated(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 300)
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit}, evs)
	for n := 0; n < len(file); n += 1 + n/50 {
		_, got, err := readAll(file[:n], Options{Salvage: true})
		if !isCorrupt(err) {
			t.Fatalf("cut at %d of %d: err = %v", n, len(file), err)
		}
		samePrefix(t, got, evs)
	}
	for n := len(file) - 40; n < len(file); n++ {
		if _, _, err := Verify(bytes.NewReader(file[:n])); !isCorrupt(err) {
			t.Fatalf("cut at %d of %d: err = %v", n, len(file), err)
		}
	}

	// A plaintext cut inside an event and cleanly recompressed is
	// reported at that event's frame.
	plain := plaintext(t, file)
	starts := frameStarts(t, plain)
	for _, k := range []int{1, 150, 300} {
		for _, cut := range []int{starts[k] + 1, starts[k] + 20, starts[k+1] - 1, starts[k]} {
			_, got, err := readAll(recompress(t, plain[:cut]), Options{Salvage: true})
			var ce *CorruptError
			if !errors.As(err, &ce) || len(got) != k-1 || ce.Offset != int64(preludeLen+starts[k]) {
				t.Fatalf("plaintext cut at %d (frame %d): %d events, %v", cut, k, len(got), err)
			}
		}
	}
}

// TestSalvage damages one event of a large file and checks that a salvage
// returns exactly the events before it and then the error.
func TestSalvage(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 3000)
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit}, evs)
	plain := plaintext(t, file)
	starts := frameStarts(t, plain)
	for _, k := range []int{1, 1234, 2999} {
		p := bytes.Clone(plain)
		p[starts[k+1]-2] ^= 1
		r, err := NewReader(bytes.NewReader(recompress(t, p)), Options{Salvage: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []*journal.Raw
		for {
			ev, err := r.Next()
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Seq != int64(k) {
					t.Fatalf("damage in seq %d: %v", k, err)
				}
				t.Logf("%v", err)
				break
			}
			got = append(got, ev)
		}
		if len(got) != k-1 {
			t.Fatalf("damage in seq %d: salvaged %d events", k, len(got))
		}
		samePrefix(t, got, evs)
		// The error stays.
		if _, err := r.Next(); !isCorrupt(err) {
			t.Fatalf("second Next = %v", err)
		}
	}
}

func TestNotACaptureFile(t *testing.T) {
	for _, in := range []string{"", "CAIRN", "PK\x03\x04 something else", "CAIRNCAP"} {
		if _, err := NewReader(strings.NewReader(in)); !isCorrupt(err) {
			t.Errorf("%q: %v", in, err)
		}
	}
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit}, makeChain(t, 0, journal.Hash{}, 3))
	f := bytes.Clone(file)
	f[len(Magic)] = FormatVersion + 1
	if _, err := NewReader(bytes.NewReader(f)); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("newer version: %v", err)
	}
	// Anything after the trailer is damage.
	f = append(bytes.Clone(file), 0)
	if _, _, err := Verify(bytes.NewReader(f)); !isCorrupt(err) {
		t.Fatalf("appended byte: %v", err)
	}
	f = append(bytes.Clone(file), file...)
	if _, _, err := Verify(bytes.NewReader(f)); !isCorrupt(err) {
		t.Fatalf("file twice: %v", err)
	}
}

// TestPipe streams a file through a pipe, as the daemon streams an export
// to the client, and reads it as it arrives.
func TestPipe(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 2000)
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		w, err := NewWriter(pw, Header{Node: "n", Stream: journal.Audit})
		if err == nil {
			for _, e := range evs {
				if err = w.Write(e); err != nil {
					break
				}
			}
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	r, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	var got []*journal.Raw
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("read %d of %d", len(got), len(evs))
	}
	samePrefix(t, got, evs)
}

// TestFlush checks that a reader of the bytes written so far gets every
// event written before Flush.
func TestFlush(t *testing.T) {
	evs := makeChain(t, 0, journal.Hash{}, 100)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{Node: "n", Stream: journal.Audit})
	for _, e := range evs[:60] {
		w.Write(e)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	_, got, err := readAll(bytes.Clone(buf.Bytes()), Options{Salvage: true})
	if !isCorrupt(err) || len(got) != 60 {
		t.Fatalf("after Flush: %d events, %v", len(got), err)
	}
	samePrefix(t, got, evs)
	for _, e := range evs[60:] {
		w.Write(e)
	}
	w.Close()
	if _, n, err := Verify(&buf); err != nil || n != 100 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// TestLargeRecord crosses the Reader's buffer with one event.
func TestLargeRecord(t *testing.T) {
	g := newChainGen(journal.Audit, 0, journal.Hash{}, 1)
	small := g.next(t)
	body, _ := journal.EncodeBody(&journal.Body{Kind: "kv.put", Subject: "big", Data: map[string]any{"value": strings.Repeat("xyz", 400_000)}})
	h := journal.ChainHash(journal.Audit, 2, baseTime+1, small.Hash(), body)
	big := &journal.Raw{Stream: journal.Audit, Seq: 2, Record: journal.EncodeRecord(baseTime+1, small.Hash(), h, body)}
	file := writeFile(t, Header{Node: "n", Stream: journal.Audit}, []*journal.Raw{small, big})
	_, got, err := readAll(file, Options{})
	if err != nil || len(got) != 2 || !bytes.Equal(got[1].Record, big.Record) {
		t.Fatalf("%d events, %v", len(got), err)
	}
	// A length far beyond the data is truncation, found without
	// allocating what the length claims.
	plain := plaintext(t, file)
	starts := frameStarts(t, plain)
	p := bytes.Clone(plain[:starts[2]])
	p = append(p, frameEvent)
	p = binary.AppendUvarint(p, MaxRecord)
	p = append(p, make([]byte, 100)...)
	if _, _, err := Verify(bytes.NewReader(recompress(t, p))); !isCorrupt(err) {
		t.Fatalf("huge length: %v", err)
	}
}

func testCreatedOf(t *testing.T, file []byte) time.Time {
	t.Helper()
	h, _, err := readAll(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h.Created
}
