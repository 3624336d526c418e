// Package archive reads and writes cairn capture files: portable,
// self-contained, versioned and compressed slices of one journal stream,
// in the spirit of sysdig's .scap files. `journal export` writes them,
// `journal import` and `cairn read` read them.
//
// A capture file holds the events exactly as the journal stores them, each
// with its seq, prev and hash, so its chain can be verified from the file
// alone: a Reader recomputes every event's hash and checks that the chain is
// unbroken from the header's anchor (the prev of the first event) to the
// footer, which carries the count and the last seq and hash (the chain
// head, to compare with the journal's). A CRC-32C of the whole file in its
// trailer catches damage to any byte, compressed or not. FORMAT.md
// specifies the bytes.
//
// A RotatingWriter splits an export into parts of a bounded size, optionally
// as a ring of a bounded number of files, as sysdig's -C and -W do; every
// part is a complete capture file of its own.
package archive

import (
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// FormatVersion is the version of the capture format this package writes
// and the newest it reads. Version 2 added signature frames (signed chain
// heads); a version-1 file reads as a file without signatures.
const FormatVersion = 2

// Magic opens every capture file.
const Magic = "CAIRNCAP"

// MaxRecord bounds the stored size of one event in a capture file. A longer
// length is damage, not an event: the Reader refuses it before allocating.
const MaxRecord = 64 << 20

// Layout constants of FORMAT.md.
const (
	preludeLen = len(Magic) + 1 // magic ‖ version

	frameHeader = 'H'
	frameEvent  = 'E'
	frameFooter = 'F'
	frameSig    = 'S' // since version 2

	maxHeaderPayload = 1 << 16
	footerPayload    = 8 + 8 + 32
	footerFrameLen   = 1 + 1 + footerPayload // type ‖ uvarint(48) ‖ payload

	// The trailer is a zstd skippable frame (which zstd tools pass over)
	// holding the CRC-32C of every byte of the file before it.
	trailerMagic = 0x184D2A5E
	trailerLen   = 4 + 4 + 4 // magic ‖ size (4) ‖ CRC-32C, little-endian as zstd is
)

// castagnoli is the CRC-32C table: hardware-accelerated, and it catches
// every single-byte change, which zstd alone does not (some bits of its
// headers and entropy tables do not change what they decode to).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header describes the events of one capture file.
type Header struct {
	// Version is the format version the file was written with.
	Version int
	// Node is the host whose journal the events come from.
	Node string
	// Stream is the journal stream, "audit" or "capture".
	Stream string
	// FirstSeq is the seq of the file's first event (for an empty file,
	// the seq the next event would have had, or 0).
	FirstSeq int64
	// LastSeq is the seq of the file's last event, or 0 when the writer
	// did not know it when it started; the footer always carries it.
	LastSeq int64
	// Created is when the file was written.
	Created time.Time
	// Anchor is the prev hash of the first event: the hash of seq
	// FirstSeq-1, or the zero hash when FirstSeq is 1. It is what the
	// chain in the file hangs from.
	Anchor journal.Hash
}

// CorruptError reports a truncated or damaged capture file. Events with a
// seq below Seq were verified; the damage is at or after it.
type CorruptError struct {
	// Offset is where the damage was found, counted in bytes of the
	// uncompressed file: the prelude (magic and version) followed by the
	// decompressed stream. It is the start of the frame that failed a
	// check, or the end of what could be decompressed.
	Offset int64
	// FileOffset is how many bytes of the file itself had been read when
	// the damage was found. The decompressor reads ahead, so the damage
	// is at or before it.
	FileOffset int64
	// Seq is the first seq not known to be good (0 when the header is
	// damaged).
	Seq int64
	// Reason says what is wrong.
	Reason string
}

// Error formats the error with its offsets, so `cairn read` can print it
// as it is.
func (e *CorruptError) Error() string {
	if e.Seq > 0 {
		return fmt.Sprintf("corrupt capture file at byte %d (uncompressed; byte %d of the file) at seq %d: %s",
			e.Offset, e.FileOffset, e.Seq, e.Reason)
	}
	return fmt.Sprintf("corrupt capture file at byte %d (uncompressed; byte %d of the file): %s",
		e.Offset, e.FileOffset, e.Reason)
}

// ErrVersion is wrapped by the error NewReader returns for a capture file
// of a format version newer than this cairn reads.
var ErrVersion = errors.New("unsupported capture file version")

// Options tune a Reader. The zero value verifies everything.
type Options struct {
	// SkipHashes skips recomputing each event's hash. The Reader still
	// checks the framing, seqs, times, that each prev equals the stored
	// hash before it, the footer, and the file's CRC-32C, so accidental
	// damage anywhere is still reported, but a damaged body only at the
	// end of the file (events returned before that error may be the
	// damaged ones); and a deliberate edit whose author recomputed the
	// CRC goes unnoticed unless it breaks a link. It saves about a third
	// of the read time.
	SkipHashes bool
	// Salvage promises that every event Next returns was verified on its
	// own (it overrides SkipHashes), so that on damage the events already
	// returned are exactly the good ones before it, followed by the
	// *CorruptError.
	Salvage bool
}
