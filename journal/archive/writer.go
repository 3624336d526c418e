package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/journal"
)

// encoderWindow is the zstd window the Writer uses: events repeat within a
// few hundred of each other, so a larger window buys little ratio and costs
// every reader the memory.
const encoderWindow = 1 << 20

// plainBuffer is how much plaintext the Writer gathers before handing it to
// the compressor, which is faster with large writes.
const plainBuffer = 64 << 10

// Writer writes one capture file. Its methods must not be called
// concurrently.
type Writer struct {
	dst  *countingWriter
	enc  *zstd.Encoder
	h    Header
	buf  []byte // plaintext not yet hashed and compressed
	err  error  // sticky: after a failed write the file is unusable
	done bool

	headerDone bool
	chain      chain

	// unflushed counts plaintext handed to the compressor since its last
	// flush: output the file may still grow by (see RotatingWriter).
	unflushed int64
}

// countingWriter counts what reaches the file, so the rotating writer knows
// a part's size, and checksums it for the trailer.
type countingWriter struct {
	w   io.Writer
	n   int64
	crc uint32
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	return n, err
}

// NewWriter starts a capture file on w and writes its prelude. The header
// follows with the first event (or at Close): a zero FirstSeq is taken from
// the first event, and with it a zero Anchor from that event's prev.
// A non-zero LastSeq is a promise the Writer holds the caller to: no event
// after it, and Close fails unless it was written. Version and a zero
// Created are filled in. The Writer works on any io.Writer, a pipe
// included; it never seeks.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if err := checkHeader(&h); err != nil {
		return nil, err
	}
	h.Version = FormatVersion
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = h.Created.UTC()
	dst := &countingWriter{w: w}
	var prelude [preludeLen]byte
	copy(prelude[:], Magic)
	prelude[len(Magic)] = FormatVersion
	if _, err := dst.Write(prelude[:]); err != nil {
		return nil, fmt.Errorf("write capture file: %w", err)
	}
	enc, err := zstd.NewWriter(dst,
		zstd.WithEncoderConcurrency(1), // synchronous: no goroutines to stop, output in order
		zstd.WithWindowSize(encoderWindow),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("start compressor: %w", err)
	}
	return &Writer{
		dst: dst, enc: enc, h: h,
		buf:   make([]byte, 0, plainBuffer+4096),
		chain: chain{stream: h.Stream, firstSeq: h.FirstSeq, anchor: h.Anchor, limit: h.LastSeq},
	}, nil
}

// checkHeader refuses a header the format cannot carry.
func checkHeader(h *Header) error {
	switch {
	case h.Stream == "":
		return errors.New("capture header: no stream")
	case len(h.Stream) > 255:
		return fmt.Errorf("capture header: stream name of %d bytes is longer than 255", len(h.Stream))
	case len(h.Node) > maxHeaderPayload/2:
		return fmt.Errorf("capture header: node name of %d bytes is too long", len(h.Node))
	case h.FirstSeq < 0 || h.LastSeq < 0:
		return fmt.Errorf("capture header: negative seq (first %d, last %d)", h.FirstSeq, h.LastSeq)
	case h.LastSeq != 0 && h.FirstSeq != 0 && h.LastSeq < h.FirstSeq-1:
		return fmt.Errorf("capture header: last seq %d is before first seq %d", h.LastSeq, h.FirstSeq)
	}
	return nil
}

// Header returns the header as written, or as it will be written if no
// event has come yet.
func (w *Writer) Header() Header { return w.h }

// Count returns how many events were written.
func (w *Writer) Count() int64 { return w.chain.count }

// Write appends one event. Events must be consecutive seqs of the header's
// stream, each chained to the one before (its prev is the previous hash,
// the first's is the Anchor); anything else is refused and leaves the file
// as it was. The Writer does not recompute hashes: the Reader does.
func (w *Writer) Write(r *journal.Raw) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("write to a closed capture file")
	}
	if err := w.chain.check(r); err != nil {
		return err
	}
	if !w.headerDone {
		w.h.FirstSeq, w.h.Anchor = w.chain.first(r)
		w.writeHeader()
	}
	w.buf = append(w.buf, frameEvent)
	w.buf = binary.AppendUvarint(w.buf, uint64(8+len(r.Record)))
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(r.Seq))
	w.buf = append(w.buf, r.Record...)
	w.chain.accept(r)
	if len(w.buf) >= plainBuffer {
		return w.drain()
	}
	return nil
}

// Sign appends a signed chain head after the event it signs, which must
// be the last one written (its seq and hash). The Writer does not check the
// signature itself: the Reader does.
func (w *Writer) Sign(sig journal.Signature) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("sign a closed capture file")
	}
	if err := w.chain.checkSig(sig); err != nil {
		return err
	}
	p, err := sig.AppendBinary(nil)
	if err != nil {
		return err
	}
	w.buf = append(w.buf, frameSig)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(p)))
	w.buf = append(w.buf, p...)
	return nil
}

// writeHeader puts the header frame in the plaintext.
func (w *Writer) writeHeader() {
	w.headerDone = true
	w.buf = appendHeader(w.buf, &w.h)
}

// appendHeader appends the header frame of FORMAT.md.
func appendHeader(b []byte, h *Header) []byte {
	var created int64
	if !h.Created.IsZero() {
		created = h.Created.UnixNano()
	}
	n := 1 + len(h.Stream) + binary.MaxVarintLen64 + len(h.Node) + 8 + 8 + 8 + 32
	p := make([]byte, 0, n)
	p = append(p, byte(len(h.Stream)))
	p = append(p, h.Stream...)
	p = binary.AppendUvarint(p, uint64(len(h.Node)))
	p = append(p, h.Node...)
	p = binary.BigEndian.AppendUint64(p, uint64(h.FirstSeq))
	p = binary.BigEndian.AppendUint64(p, uint64(h.LastSeq))
	p = binary.BigEndian.AppendUint64(p, uint64(created))
	p = append(p, h.Anchor[:]...)
	b = append(b, frameHeader)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// drain hands the buffered plaintext to the compressor.
func (w *Writer) drain() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.enc.Write(w.buf); err != nil {
		w.err = fmt.Errorf("write capture file: %w", err)
		return w.err
	}
	w.unflushed += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// Flush compresses and writes out every event written so far, so that a
// reader of the bytes written until now (or a salvage of a file cut short)
// sees them all. Flushing often costs compression ratio.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return nil
	}
	if err := w.drain(); err != nil {
		return err
	}
	if err := w.enc.Flush(); err != nil {
		w.err = fmt.Errorf("write capture file: %w", err)
		return w.err
	}
	w.unflushed = 0
	return nil
}

// Close writes the footer and the end of the compressed stream. It does not
// close the underlying writer. It fails if the header promised a LastSeq
// that was not written (the file is still complete, and a Reader reports
// the mismatch).
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	if w.err != nil {
		return w.err
	}
	if !w.headerDone {
		w.writeHeader()
	}
	last, head := w.chain.head()
	if err := w.drain(); err != nil {
		return err
	}
	var f [footerFrameLen]byte
	f[0], f[1] = frameFooter, footerPayload
	binary.BigEndian.PutUint64(f[2:], uint64(w.chain.count))
	binary.BigEndian.PutUint64(f[10:], uint64(last))
	copy(f[18:], head[:])
	if _, err := w.enc.Write(f[:]); err != nil {
		w.err = fmt.Errorf("write capture file: %w", err)
		return w.err
	}
	if err := w.enc.Close(); err != nil {
		w.err = fmt.Errorf("write capture file: %w", err)
		return w.err
	}
	var t [trailerLen]byte
	binary.LittleEndian.PutUint32(t[0:], trailerMagic)
	binary.LittleEndian.PutUint32(t[4:], 4)
	binary.LittleEndian.PutUint32(t[8:], w.dst.crc)
	if _, err := w.dst.Write(t[:]); err != nil {
		w.err = fmt.Errorf("write capture file: %w", err)
		return w.err
	}
	if w.h.LastSeq != 0 && last != w.h.LastSeq {
		w.err = fmt.Errorf("capture of seqs %d..%d ended at seq %d", w.h.FirstSeq, w.h.LastSeq, last)
		return w.err
	}
	return nil
}

// size returns the bytes written to the file so far and a bound on how
// much the plaintext not yet flushed can add to it.
func (w *Writer) size() (written, pending int64) {
	return w.dst.n, w.unflushed + int64(len(w.buf))
}

// chain holds a writer to the rules of a capture file: events of one
// stream, consecutive, chained, in time order, within the promised range.
type chain struct {
	stream   string
	firstSeq int64 // 0: taken from the first event
	anchor   journal.Hash
	limit    int64 // promised last seq, or 0

	count    int64
	lastSeq  int64
	lastTime int64
	lastHash journal.Hash
}

// first returns the first seq and anchor the chain starts from if r is
// its first event.
func (c *chain) first(r *journal.Raw) (int64, journal.Hash) {
	if c.firstSeq != 0 {
		return c.firstSeq, c.anchor
	}
	if c.anchor == (journal.Hash{}) {
		return r.Seq, r.Prev()
	}
	return r.Seq, c.anchor
}

// check reports why r cannot come next, or nil.
func (c *chain) check(r *journal.Raw) error {
	if r.Stream != c.stream {
		return fmt.Errorf("capture of stream %s: refusing an event of stream %s", c.stream, r.Stream)
	}
	if err := journal.CheckRecord(r.Record); err != nil {
		return fmt.Errorf("capture %s seq %d: %w", r.Stream, r.Seq, err)
	}
	if len(r.Record) > MaxRecord {
		return fmt.Errorf("capture %s seq %d: record of %d bytes is larger than %d", r.Stream, r.Seq, len(r.Record), MaxRecord)
	}
	if c.count == 0 {
		first, anchor := c.first(r)
		if r.Seq != first {
			return fmt.Errorf("capture starting at seq %d: refusing seq %d as its first event", first, r.Seq)
		}
		if r.Prev() != anchor {
			return fmt.Errorf("capture %s seq %d: prev %s is not the anchor %s", r.Stream, r.Seq, r.Prev(), anchor)
		}
	} else {
		if r.Seq != c.lastSeq+1 {
			return fmt.Errorf("capture %s: refusing seq %d after seq %d; events must be consecutive", r.Stream, r.Seq, c.lastSeq)
		}
		if r.Prev() != c.lastHash {
			return fmt.Errorf("capture %s seq %d: prev %s is not the hash of seq %d (%s)", r.Stream, r.Seq, r.Prev(), c.lastSeq, c.lastHash)
		}
		if r.Time() < c.lastTime {
			return fmt.Errorf("capture %s seq %d: time goes backwards", r.Stream, r.Seq)
		}
	}
	if c.limit != 0 && r.Seq > c.limit {
		return fmt.Errorf("capture of seqs up to %d: refusing seq %d", c.limit, r.Seq)
	}
	return nil
}

// checkSig reports why sig cannot follow the last event, or nil.
func (c *chain) checkSig(sig journal.Signature) error {
	switch {
	case c.count == 0:
		return fmt.Errorf("capture %s: a signature of seq %d before any event", c.stream, sig.Seq)
	case sig.Seq != c.lastSeq:
		return fmt.Errorf("capture %s: a signature of seq %d after seq %d; a signature follows the event it signs", c.stream, sig.Seq, c.lastSeq)
	case sig.Hash != c.lastHash:
		return fmt.Errorf("capture %s: the signature of seq %d signs hash %s, the event's is %s", c.stream, sig.Seq, sig.Hash, c.lastHash)
	}
	return nil
}

// accept records r, which check accepted, as the chain's head.
func (c *chain) accept(r *journal.Raw) {
	if c.count == 0 {
		c.firstSeq, c.anchor = c.first(r)
	}
	c.count++
	c.lastSeq, c.lastTime, c.lastHash = r.Seq, r.Time(), r.Hash()
}

// head returns the last seq and hash: of the last event, or for an empty
// chain the ones before its first.
func (c *chain) head() (int64, journal.Hash) {
	if c.count == 0 {
		return max(c.firstSeq-1, 0), c.anchor
	}
	return c.lastSeq, c.lastHash
}
