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

// maxWindow bounds the zstd window a Reader accepts, so a hostile file
// cannot make it allocate more. The Writer uses encoderWindow.
const maxWindow = 64 << 20

// Allocation blocks for the events Next returns: records are cut from
// slabs rather than allocated one by one, which matters at millions of
// events per second.
const (
	slabSize = 64 << 10
	rawBlock = 256
)

// Reader reads and verifies a capture file event by event. Its methods
// must not be called concurrently.
type Reader struct {
	src *countingReader
	dec *zstd.Decoder
	h   Header

	verifyHashes bool
	headerRead   bool

	// buf[r:w] is decompressed and not yet consumed.
	buf      []byte
	r, w     int
	off      int64 // uncompressed offset of buf[r], prelude included
	srcErr   error
	err      error // sticky: io.EOF or the *CorruptError
	count    int64
	lastTime int64
	lastHash journal.Hash
	slab     []byte
	raws     []journal.Raw

	// sigs are the signed heads verified so far; sigs[lastSigs:] came
	// with the event Next returned last.
	sigs     []journal.Signature
	lastSigs int
}

// countingReader counts the file bytes the decompressor has taken and
// checksums all but the last trailerLen of them, which it holds back: at
// the end of the file they are the trailer.
type countingReader struct {
	r    io.Reader
	n    int64
	crc  uint32
	tail [trailerLen]byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.feed(p[:n])
	return n, err
}

func (c *countingReader) feed(b []byte) {
	held := int(min(c.n-int64(len(b)), trailerLen))
	if len(b) >= trailerLen {
		c.crc = crc32.Update(c.crc, castagnoli, c.tail[:held])
		c.crc = crc32.Update(c.crc, castagnoli, b[:len(b)-trailerLen])
		copy(c.tail[:], b[len(b)-trailerLen:])
		return
	}
	var all [2 * trailerLen]byte
	n := copy(all[:], c.tail[:held])
	n += copy(all[n:], b)
	keep := min(n, trailerLen)
	c.crc = crc32.Update(c.crc, castagnoli, all[:n-keep])
	copy(c.tail[:], all[n-keep:n])
}

// trailer checks, once the whole file was read, that it ends with the
// trailer and that the trailer's CRC-32C is the file's.
func (c *countingReader) trailer() string {
	if c.n < int64(preludeLen+trailerLen) {
		return "no trailer"
	}
	t := c.tail[:]
	switch {
	case binary.LittleEndian.Uint32(t) != trailerMagic || binary.LittleEndian.Uint32(t[4:]) != 4:
		return "the file does not end with its trailer"
	case binary.LittleEndian.Uint32(t[8:]) != c.crc:
		return fmt.Sprintf("file checksum mismatch (CRC-32C of the file is %08x, its trailer says %08x): the compressed bytes are damaged",
			c.crc, binary.LittleEndian.Uint32(t[8:]))
	}
	return ""
}

// NewReader starts reading a capture file and reads and checks its prelude
// and header. At most one Options may be given. A damaged or truncated
// header is a *CorruptError; a newer format version wraps ErrVersion.
func NewReader(src io.Reader, opts ...Options) (*Reader, error) {
	var o Options
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		return nil, errors.New("archive.NewReader: more than one Options")
	}
	cr := &countingReader{r: src}
	r := &Reader{src: cr, verifyHashes: !o.SkipHashes || o.Salvage}

	var prelude [preludeLen]byte
	if n, err := io.ReadFull(cr, prelude[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, r.corrupt(int64(n), 0, "file of %d bytes is too short for a capture file", n)
		}
		return nil, fmt.Errorf("read capture file: %w", err)
	}
	if string(prelude[:len(Magic)]) != Magic {
		return nil, r.corrupt(0, 0, "not a cairn capture file (it does not start with %q)", Magic)
	}
	switch v := prelude[len(Magic)]; {
	case v == 0:
		return nil, r.corrupt(int64(len(Magic)), 0, "format version 0")
	case v > FormatVersion:
		return nil, fmt.Errorf("capture file format version %d is newer than this cairn reads (%d): upgrade cairn: %w", v, FormatVersion, ErrVersion)
	}
	dec, err := zstd.NewReader(cr,
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines, so no Close to forget
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(maxWindow))
	if err != nil {
		return nil, fmt.Errorf("start decompressor: %w", err)
	}
	r.dec = dec
	r.buf = make([]byte, 64<<10)
	r.off = int64(preludeLen)
	r.h.Version = int(prelude[len(Magic)])
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

// Header returns the file's header.
func (r *Reader) Header() Header { return r.h }

// corrupt builds the *CorruptError for damage found at uncompressed offset
// off.
func (r *Reader) corrupt(off, seq int64, format string, args ...any) *CorruptError {
	return &CorruptError{Offset: off, FileOffset: r.src.n, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// errShort is need's report of a stream that ended inside the bytes asked
// for.
var errShort = errors.New("stream ends inside the bytes needed")

// decompressError is need's report of a decompressor failure, which can be
// io.ErrUnexpectedEOF itself for a truncated file.
type decompressError struct{ err error }

func (e decompressError) Error() string { return e.err.Error() }

// need makes buf[r:r+n] hold decompressed bytes. It returns io.EOF when the
// stream ended exactly at r, errShort when it ended inside the n bytes, and
// a decompressError when the decompressor failed.
func (r *Reader) need(n int) error {
	for r.w-r.r < n {
		if r.srcErr != nil {
			if r.srcErr == io.EOF {
				if r.w == r.r {
					return io.EOF
				}
				return errShort
			}
			return decompressError{r.srcErr}
		}
		if r.w == len(r.buf) {
			r.compact()
			if r.w == len(r.buf) {
				// A frame larger than the buffer: grow as its bytes arrive,
				// not as its length claims.
				nb := make([]byte, min(2*len(r.buf), n+binary.MaxVarintLen64))
				r.w = copy(nb, r.buf[:r.w])
				r.buf = nb
			}
		}
		m, err := r.dec.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			r.srcErr = err
		}
	}
	return nil
}

// compact moves the unread bytes to the front.
func (r *Reader) compact() {
	if r.r == 0 {
		return
	}
	r.w = copy(r.buf, r.buf[r.r:r.w])
	r.r = 0
}

// advance consumes n bytes.
func (r *Reader) advance(n int) {
	r.r += n
	r.off += int64(n)
}

// needError turns a failure of need into the *CorruptError it means.
func (r *Reader) needError(err error, start, seq int64, what string) *CorruptError {
	switch err {
	case io.EOF:
		return r.corrupt(start, seq, "file ends before %s (truncated?)", what)
	case errShort:
		return r.corrupt(start, seq, "file ends inside %s (truncated?)", what)
	}
	return r.corrupt(r.off+int64(r.w-r.r), seq, "cannot decompress %s: %v", what, err)
}

// frame reads the type and payload length of the next frame and makes the
// payload available at buf[r:r+length]. maxLen bounds the length by type.
func (r *Reader) frame(seq int64) (typ byte, length int, start int64, cerr *CorruptError) {
	start = r.off
	if err := r.need(1 + binary.MaxVarintLen64); err != nil && err != errShort {
		return 0, 0, start, r.needError(err, start, seq, r.what(seq))
	}
	typ = r.buf[r.r]
	v, k := binary.Uvarint(r.buf[r.r+1 : r.w])
	switch {
	case k == 0:
		return 0, 0, start, r.needError(errShort, start, seq, r.what(seq))
	case k < 0:
		return 0, 0, start, r.corrupt(start, seq, "bad frame length in %s", r.what(seq))
	}
	var limit uint64
	switch typ {
	case frameHeader:
		limit = maxHeaderPayload
	case frameEvent:
		limit = 8 + MaxRecord
	case frameFooter:
		limit = footerPayload
	case frameSig:
		if r.h.Version < 2 {
			return 0, 0, start, r.corrupt(start, seq, "a signature frame in a version-%d file", r.h.Version)
		}
		limit = journal.SignatureLen
	default:
		return 0, 0, start, r.corrupt(start, seq, "unknown frame type 0x%02x where %s was expected", typ, r.what(seq))
	}
	if v > limit {
		return 0, 0, start, r.corrupt(start, seq, "frame of %d bytes in %s is longer than %d", v, r.what(seq), limit)
	}
	if err := r.need(1 + k + int(v)); err != nil {
		return 0, 0, start, r.needError(err, start, seq, r.what(seq))
	}
	r.advance(1 + k)
	return typ, int(v), start, nil
}

// what names the frame expected next, for errors.
func (r *Reader) what(seq int64) string {
	if !r.headerRead {
		return "the header"
	}
	return fmt.Sprintf("seq %d or the footer", seq)
}

// readHeader reads the header frame.
func (r *Reader) readHeader() error {
	typ, n, start, cerr := r.frame(0)
	if cerr != nil {
		return cerr
	}
	if typ != frameHeader {
		return r.corrupt(start, 0, "frame type 0x%02x where the header was expected", typ)
	}
	p := r.buf[r.r : r.r+n]
	bad := func(what string) error { return r.corrupt(start, 0, "header: %s", what) }
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return bad("short stream name")
	}
	if p[0] == 0 {
		return bad("no stream name")
	}
	r.h.Stream = string(p[1 : 1+p[0]])
	p = p[1+p[0]:]
	nl, k := binary.Uvarint(p)
	if k <= 0 || nl > uint64(len(p)-k) {
		return bad("short node name")
	}
	r.h.Node = string(p[k : k+int(nl)])
	p = p[k+int(nl):]
	// Exactly: new fields come with a new format version.
	if len(p) != 8+8+8+32 {
		return bad(fmt.Sprintf("%d bytes of seqs, time and anchor where %d were expected", len(p), 8+8+8+32))
	}
	first := int64(binary.BigEndian.Uint64(p))
	last := int64(binary.BigEndian.Uint64(p[8:]))
	created := int64(binary.BigEndian.Uint64(p[16:]))
	copy(r.h.Anchor[:], p[24:56])
	switch {
	case first < 0 || last < 0:
		return bad(fmt.Sprintf("negative seq (first %d, last %d)", first, last))
	case last != 0 && last < first-1:
		return bad(fmt.Sprintf("last seq %d is before first seq %d", last, first))
	}
	r.h.FirstSeq, r.h.LastSeq = first, last
	if created != 0 {
		r.h.Created = time.Unix(0, created).UTC()
	}
	r.advance(n)
	r.lastHash = r.h.Anchor
	r.headerRead = true
	return nil
}

// Next returns the next event, verified: a well-formed record of the
// header's stream, its seq the one after the previous (the first:
// FirstSeq), its time not before the previous, its prev the previous hash
// (the first: the Anchor) and, unless Options.SkipHashes, its hash the one
// its contents give. After the last event Next checks the footer (count,
// last seq and hash) and the end of the file with its CRC-32C, and
// returns io.EOF. Damage and truncation are a *CorruptError, returned from
// then on. Events share memory in blocks; Clone one to keep it alone.
func (r *Reader) Next() (*journal.Raw, error) {
	if r.err != nil {
		return nil, r.err
	}
	raw, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return raw, nil
}

func (r *Reader) next() (*journal.Raw, error) {
	seq := r.h.FirstSeq + r.count
	typ, n, start, cerr := r.frame(seq)
	if cerr != nil {
		return nil, cerr
	}
	switch typ {
	case frameFooter:
		return nil, r.footer(start, n)
	case frameHeader:
		return nil, r.corrupt(start, seq, "a second header where seq %d or the footer was expected", seq)
	case frameSig:
		return nil, r.corrupt(start, seq, "a signature where seq %d or the footer was expected (a signature follows the event it signs)", seq)
	}
	p := r.buf[r.r : r.r+n]
	if len(p) < 8 {
		return nil, r.corrupt(start, seq, "event frame of %d bytes is too short", len(p))
	}
	if got := int64(binary.BigEndian.Uint64(p)); got != seq {
		return nil, r.corrupt(start, seq, "seq %d where %d was expected", got, seq)
	}
	ev := journal.Raw{Stream: r.h.Stream, Seq: seq, Record: p[8:]}
	if err := journal.CheckRecord(ev.Record); err != nil {
		return nil, r.corrupt(start, seq, "%v", err)
	}
	if prev := ev.Prev(); prev != r.lastHash {
		if r.count == 0 {
			return nil, r.corrupt(start, seq, "prev %s is not the header's anchor %s", prev, r.lastHash)
		}
		return nil, r.corrupt(start, seq, "prev %s is not the hash of seq %d (%s)", prev, seq-1, r.lastHash)
	}
	t := ev.Time()
	if t < r.lastTime {
		return nil, r.corrupt(start, seq, "time goes backwards")
	}
	stored := ev.Hash()
	if r.verifyHashes {
		if h := ev.ComputeHash(); h != stored {
			return nil, r.corrupt(start, seq, "stored hash %s does not match the event's contents (%s)", stored, h)
		}
	}
	out := r.newRaw()
	out.Stream, out.Seq, out.Record = r.h.Stream, seq, r.alloc(len(ev.Record))
	copy(out.Record, ev.Record)
	r.advance(n)
	// The signatures of this head, before the event counts as read: a bad
	// one makes the event itself not known good.
	r.lastSigs = len(r.sigs)
	for r.need(1) == nil && r.buf[r.r] == frameSig {
		if err := r.signature(seq, stored); err != nil {
			return nil, err
		}
	}
	r.count++
	r.lastTime, r.lastHash = t, stored
	return out, nil
}

// signature reads and checks the signature frame that follows event seq,
// whose hash is h.
func (r *Reader) signature(seq int64, h journal.Hash) error {
	typ, n, start, cerr := r.frame(seq)
	if cerr != nil {
		return cerr
	}
	if typ != frameSig || n != journal.SignatureLen {
		return r.corrupt(start, seq, "signature frame of %d bytes where %d were expected", n, journal.SignatureLen)
	}
	sig, err := journal.DecodeSignature(r.buf[r.r : r.r+n])
	if err != nil {
		return r.corrupt(start, seq, "%v", err)
	}
	switch {
	case sig.Seq != seq:
		return r.corrupt(start, seq, "a signature of seq %d after seq %d (a signature follows the event it signs)", sig.Seq, seq)
	case sig.Hash != h:
		return r.corrupt(start, seq, "the signature of seq %d by key %s signs hash %s, the event's is %s", seq, sig.Signer(), sig.Hash, h)
	}
	if err := sig.Check(r.h.Stream); err != nil {
		return r.corrupt(start, seq, "bad signature: %v", err)
	}
	r.advance(n)
	r.sigs = append(r.sigs, sig)
	return nil
}

// Signatures returns the signed heads verified so far, in seq order.
func (r *Reader) Signatures() []journal.Signature { return r.sigs }

// EventSignatures returns the signatures of the head Next returned last.
func (r *Reader) EventSignatures() []journal.Signature { return r.sigs[r.lastSigs:] }

// SignedThrough returns the highest seq read so far whose head carries a
// verified signature, and that signature's key fingerprint ("" and 0 when
// none did).
func (r *Reader) SignedThrough() (int64, string) {
	if len(r.sigs) == 0 {
		return 0, ""
	}
	sig := r.sigs[len(r.sigs)-1]
	return sig.Seq, sig.Signer()
}

// footer checks the footer frame whose payload is at buf[r:r+n] and the end
// of the file after it.
func (r *Reader) footer(start int64, n int) error {
	seq := r.h.FirstSeq + r.count
	if n != footerPayload {
		return r.corrupt(start, seq, "footer of %d bytes where %d were expected", n, footerPayload)
	}
	p := r.buf[r.r : r.r+n]
	count := int64(binary.BigEndian.Uint64(p))
	last := int64(binary.BigEndian.Uint64(p[8:]))
	var head journal.Hash
	copy(head[:], p[16:48])
	wantLast := max(seq-1, 0)
	switch {
	case count != r.count:
		return r.corrupt(start, seq, "footer counts %d events, the file holds %d", count, r.count)
	case last != wantLast:
		return r.corrupt(start, seq, "footer's last seq %d is not the last event's (%d)", last, wantLast)
	case head != r.lastHash:
		return r.corrupt(start, seq, "footer's chain head %s is not the last event's hash %s", head, r.lastHash)
	case r.h.LastSeq != 0 && r.h.LastSeq != last:
		return r.corrupt(start, seq, "header promises seqs through %d, the file ends at %d", r.h.LastSeq, last)
	}
	r.advance(n)
	switch err := r.need(1); err {
	case io.EOF:
		if why := r.src.trailer(); why != "" {
			return r.corrupt(r.off, seq, "%s", why)
		}
		return io.EOF
	case nil, errShort:
		return r.corrupt(r.off, seq, "data after the footer")
	default:
		return r.needError(err, r.off, seq, "the end of the file")
	}
}

// newRaw hands out a Raw from the current block.
func (r *Reader) newRaw() *journal.Raw {
	if len(r.raws) == 0 {
		r.raws = make([]journal.Raw, rawBlock)
	}
	out := &r.raws[0]
	r.raws = r.raws[1:]
	return out
}

// alloc hands out n bytes from the current slab; large records get their
// own allocation.
func (r *Reader) alloc(n int) []byte {
	if n > slabSize/8 {
		return make([]byte, n)
	}
	if len(r.slab) < n {
		r.slab = make([]byte, slabSize)
	}
	b := r.slab[:n:n]
	r.slab = r.slab[n:]
	return b
}

// Verify reads a whole capture file and verifies every event and the
// footer. It returns the header (zero if it could not be read), how many
// events were verified and, for a damaged file, the *CorruptError.
func Verify(src io.Reader) (Header, int64, error) {
	r, err := NewReader(src)
	if err != nil {
		return Header{}, 0, err
	}
	for {
		if _, err := r.Next(); err != nil {
			if err == io.EOF {
				return r.h, r.count, nil
			}
			return r.h, r.count, err
		}
	}
}

// Count returns how many events were read and verified.
func (r *Reader) Count() int64 { return r.count }
