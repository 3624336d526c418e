package archive

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cairnhq/cairn/journal"
)

// PartName names the file a RotatingWriter's part index goes to, as tcpdump
// and sysdig name rotated captures: index 0 is the file itself, index i the
// file name followed by i (capture.cairn, capture.cairn1, capture.cairn2…).
func PartName(file string, index int) string {
	if index == 0 {
		return file
	}
	return file + strconv.Itoa(index)
}

// RotatingWriter writes an export as a series of capture files (parts), as
// sysdig's -C (maximum size of a file) and -W (maximum number of files) do.
// Every part is a complete capture file: its own header, with the first
// seq and the anchor of its first event, and its own footer, so each
// verifies alone and the parts in seq order give the whole chain.
// Its methods must not be called concurrently.
type RotatingWriter struct {
	create   func(index int) (io.WriteCloser, error)
	h        Header
	maxSize  int64
	maxFiles int

	chain chain // the whole export's, across parts
	parts int   // parts started
	cur   *Writer
	file  io.WriteCloser
	err   error
	done  bool
}

// NewRotating returns a writer that creates its parts through create, so
// the caller decides where their bytes go (PartName gives the usual names).
// A part is closed once the next event might take it past maxSize bytes,
// so parts stay within maxSize unless a single event is larger; maxSize
// <= 0 writes one part. With maxFiles > 0 the parts form a ring: part n
// goes to index n % maxFiles, so create must replace what the index held
// and only the last maxFiles parts remain. h is the export's header:
// its FirstSeq, Anchor and LastSeq bind the export as a whole (see
// NewWriter); each part's header carries its own first seq and anchor and
// no last seq (its footer has it). Nothing is created before the first
// Write, or Close for an empty export, which makes one empty part.
func NewRotating(create func(index int) (io.WriteCloser, error), h Header, maxSize int64, maxFiles int) *RotatingWriter {
	return &RotatingWriter{
		create: create, h: h, maxSize: maxSize, maxFiles: maxFiles,
		chain: chain{stream: h.Stream, firstSeq: h.FirstSeq, anchor: h.Anchor, limit: h.LastSeq},
	}
}

// Parts returns how many parts were started, the ones a ring overwrote
// included.
func (w *RotatingWriter) Parts() int { return w.parts }

// sizeBound is the most a file can grow by for n more bytes of plaintext
// and its end: raw blocks of at most 128 KiB with a 3-byte header each,
// the frame header, a last block, the 4-byte checksum and the trailer.
func sizeBound(n int64) int64 { return n + n/1024 + 96 }

// Write appends one event, starting a new part first when this event and
// the footer might not fit in the current one. Events must be consecutive
// seqs of the header's stream, chained, as for Writer; a refused event
// leaves everything as it was.
func (w *RotatingWriter) Write(r *journal.Raw) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("write to a closed capture export")
	}
	if err := w.chain.check(r); err != nil {
		return err
	}
	if w.cur != nil && w.maxSize > 0 && w.cur.Count() > 0 {
		frame := int64(eventFrameLen(len(r.Record)))
		written, pending := w.cur.size()
		if written+sizeBound(pending+frame+footerFrameLen) > w.maxSize {
			// Only now learn the part's true size: flushing early costs
			// ratio, flushing here costs a few small blocks at its end.
			if err := w.cur.Flush(); err != nil {
				return w.fail(err)
			}
			if written, _ = w.cur.size(); written+sizeBound(frame+footerFrameLen) > w.maxSize {
				if err := w.closePart(); err != nil {
					return err
				}
			}
		}
	}
	if w.cur == nil {
		if err := w.openPart(r); err != nil {
			return err
		}
	}
	if err := w.cur.Write(r); err != nil {
		return w.fail(err)
	}
	w.chain.accept(r)
	return nil
}

// Sign appends a signed chain head after the last event written, in the
// part that holds that event (see Writer.Sign).
func (w *RotatingWriter) Sign(sig journal.Signature) error {
	if w.err != nil {
		return w.err
	}
	if w.cur == nil {
		return fmt.Errorf("capture %s: a signature of seq %d with no event before it in its part", w.h.Stream, sig.Seq)
	}
	if err := w.cur.Sign(sig); err != nil {
		return w.fail(err)
	}
	return nil
}

// Cut ends the current part, if it holds any event: the next event starts
// a new one. `journal import` cuts after signed heads, so that each part it
// sends ends at one.
func (w *RotatingWriter) Cut() error {
	if w.err != nil {
		return w.err
	}
	if w.cur == nil || w.cur.Count() == 0 {
		return nil
	}
	return w.closePart()
}

// PartSize returns the bytes written to the current part so far and a
// bound on what its unflushed plaintext may add (0, 0 without a part).
func (w *RotatingWriter) PartSize() (written, pending int64) {
	if w.cur == nil {
		return 0, 0
	}
	return w.cur.size()
}

// openPart starts the next part with r as its first event.
func (w *RotatingWriter) openPart(r *journal.Raw) error {
	index := w.parts
	if w.maxFiles > 0 {
		index %= w.maxFiles
	}
	h := w.h
	h.LastSeq = 0
	if r != nil {
		h.FirstSeq, h.Anchor = w.chain.first(r)
		if w.chain.count > 0 {
			h.FirstSeq, h.Anchor = w.chain.lastSeq+1, w.chain.lastHash
		}
	}
	f, err := w.create(index)
	if err != nil {
		return w.fail(fmt.Errorf("create capture part %d: %w", index, err))
	}
	cw, err := NewWriter(f, h)
	if err != nil {
		f.Close()
		return w.fail(fmt.Errorf("capture part %d: %w", index, err))
	}
	w.parts++
	w.cur, w.file = cw, f
	return nil
}

// closePart finishes the current part and closes its file.
func (w *RotatingWriter) closePart() error {
	err := w.cur.Close()
	if cerr := w.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close capture part: %w", cerr)
	}
	w.cur, w.file = nil, nil
	if err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *RotatingWriter) fail(err error) error {
	w.err = err
	return err
}

// Close finishes the last part (making an empty one if nothing was
// written). It fails if the header promised a LastSeq that was not
// written.
func (w *RotatingWriter) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	if w.err != nil {
		if w.cur != nil {
			w.file.Close()
		}
		return w.err
	}
	if w.cur == nil && w.parts == 0 {
		if err := w.openPart(nil); err != nil {
			return err
		}
	}
	if w.cur != nil {
		if err := w.closePart(); err != nil {
			return err
		}
	}
	if last, _ := w.chain.head(); w.h.LastSeq != 0 && last != w.h.LastSeq {
		return w.fail(fmt.Errorf("capture export of seqs %d..%d ended at seq %d", w.h.FirstSeq, w.h.LastSeq, last))
	}
	return nil
}

// eventFrameLen is the plaintext size of an event frame.
func eventFrameLen(record int) int {
	n := 8 + record
	return 1 + uvarintLen(uint64(n)) + n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
