package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/journal"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// baseTime is the commit time of the first event the helpers build.
var testCreated = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var baseTime = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixNano()

// chainGen builds a valid chain of varied, realistic events the way the
// journal's committer does: EncodeBody, ChainHash, EncodeRecord.
type chainGen struct {
	stream string
	seq    int64 // of the last event built
	time   int64
	prev   journal.Hash
	rng    *rand.Rand
}

func newChainGen(stream string, after int64, anchor journal.Hash, seed uint64) *chainGen {
	return &chainGen{stream: stream, seq: after, time: baseTime, prev: anchor, rng: rand.New(rand.NewPCG(seed, 7))}
}

var genKinds = []string{"kv.put", "kv.delete", "x.y", "capture.exec", "infra.create", "lease.expire"}

// next builds the next event of the chain.
func (g *chainGen) next(tb testing.TB) *journal.Raw {
	tb.Helper()
	r := g.rng
	kind := genKinds[r.IntN(len(genKinds))]
	b := journal.Body{
		Kind:    kind,
		Subject: fmt.Sprintf("app/svc%d/key%d", r.IntN(50), r.IntN(1000)),
		Node:    "host-1",
		Actor:   journal.Actor{UID: 1000 + r.IntN(3), GID: 1000, PID: 4000 + r.IntN(500), User: "alice", Comm: "cairn", Via: "socket"},
		Data: map[string]any{
			"value": fmt.Sprintf("postgres://db%d:5432/app?x=%x", r.IntN(9), r.Uint32()),
			"rev":   r.IntN(1 << 20),
		},
	}
	if kind == "capture.exec" {
		b.Proc = &journal.Proc{Name: "make", PID: int64(r.IntN(1 << 16)), PPID: 1, Cmdline: "make -j2 test", Exe: "/usr/bin/make", Cwd: "/src"}
		b.Evt = &journal.Evt{Type: "execve", Num: int64(g.seq), Res: 0, Latency: int64(r.IntN(10000))}
	}
	body, err := journal.EncodeBody(&b)
	if err != nil {
		tb.Fatal(err)
	}
	g.seq++
	g.time += int64(r.IntN(3)) * 1000 // sometimes equal times: allowed
	h := journal.ChainHash(g.stream, g.seq, g.time, g.prev, body)
	raw := &journal.Raw{Stream: g.stream, Seq: g.seq, Record: journal.EncodeRecord(g.time, g.prev, h, body)}
	g.prev = h
	return raw
}

// makeChain builds n events of stream audit after seq `after`.
func makeChain(tb testing.TB, after int64, anchor journal.Hash, n int) []*journal.Raw {
	tb.Helper()
	g := newChainGen(journal.Audit, after, anchor, uint64(after)+uint64(n))
	out := make([]*journal.Raw, n)
	for i := range out {
		out[i] = g.next(tb)
	}
	return out
}

// writeFile writes events into one capture file.
func writeFile(tb testing.TB, h Header, evs []*journal.Raw) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Write(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads a capture file, returning the events before the first
// error and that error (nil after a clean io.EOF).
func readAll(data []byte, o Options) (Header, []*journal.Raw, error) {
	r, err := NewReader(bytes.NewReader(data), o)
	if err != nil {
		return Header{}, nil, err
	}
	var out []*journal.Raw
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return r.Header(), out, nil
		}
		if err != nil {
			return r.Header(), out, err
		}
		out = append(out, ev)
	}
}

// plaintext returns the decompressed stream of a capture file.
func plaintext(tb testing.TB, file []byte) []byte {
	tb.Helper()
	d, err := zstd.NewReader(bytes.NewReader(file[preludeLen:]), zstd.WithDecoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	p, err := io.ReadAll(d)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// recompress builds a capture file around a (tampered) plaintext, as an
// attacker who edits the decompressed stream would.
func recompress(tb testing.TB, plain []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	buf.WriteString(Magic)
	buf.WriteByte(FormatVersion)
	e, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	e.Write(plain)
	if err := e.Close(); err != nil {
		tb.Fatal(err)
	}
	return withTrailer(buf.Bytes())
}

// withTrailer appends the trailer a capture file of these bytes needs.
func withTrailer(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, trailerMagic)
	b = binary.LittleEndian.AppendUint32(b, 4)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[:len(b)-8], castagnoli))
}

// frameStarts returns the plaintext offset of every frame: the header,
// each event in order, then the footer.
func frameStarts(tb testing.TB, plain []byte) []int {
	tb.Helper()
	var out []int
	for off := 0; off < len(plain); {
		out = append(out, off)
		n, k := uvarint(plain[off+1:])
		if k <= 0 {
			tb.Fatalf("bad frame at %d", off)
		}
		off += 1 + k + int(n)
	}
	return out
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// samePrefix fails unless got is a prefix of want, event by event.
func samePrefix(tb testing.TB, got, want []*journal.Raw) {
	tb.Helper()
	if len(got) > len(want) {
		tb.Fatalf("got %d events, more than the %d written", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Stream != w.Stream || g.Seq != w.Seq || !bytes.Equal(g.Record, w.Record) {
			tb.Fatalf("event %d: got %s seq %d, want %s seq %d (records equal: %v)",
				i, g.Stream, g.Seq, w.Stream, w.Seq, bytes.Equal(g.Record, w.Record))
		}
	}
}
