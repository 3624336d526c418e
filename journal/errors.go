package journal

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// The journal's errors are typed: callers branch on them with errors.Is,
// and the daemon (engines.ErrorCode) turns them into wire codes and hints.
// The journal itself knows nothing of the wire.
var (
	// ErrClosed reports that the journal (or the subscription) was closed.
	ErrClosed = errors.New("journal closed")

	// ErrResourceExhausted is matched by the error an append returns when
	// the free disk space is below the reserve.
	ErrResourceExhausted = errors.New("resource exhausted")

	// ErrInvalid is matched by an error about input the journal refuses: an
	// event body that does not encode, an import whose events do not chain.
	ErrInvalid = errors.New("invalid input")

	// ErrDataLoss is matched by an error reading events that the disk
	// damaged: a *DataLossError naming the first event that cannot be read.
	ErrDataLoss = errors.New("data loss")

	// ErrNotContinuous is matched by an import that does not continue the
	// stream where it ends.
	ErrNotContinuous = errors.New("import does not continue the stream")
)

// reserveError says how far below the reserve the free space is. It matches
// ErrResourceExhausted.
type reserveError struct {
	dir           string
	free, reserve uint64
}

func (e *reserveError) Error() string {
	return fmt.Sprintf("free space on %s (%d MiB) is below the reserve (%d MiB)",
		e.dir, e.free>>20, e.reserve>>20)
}

func (e *reserveError) Is(target error) bool { return target == ErrResourceExhausted }

// kindError is a message that matches one of the sentinel errors above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func invalidf(format string, args ...any) error {
	return &kindError{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}
func discontinuousf(format string, args ...any) error {
	return &kindError{kind: ErrNotContinuous, msg: fmt.Sprintf(format, args...)}
}

// DataLossError reports events that cannot be read because a file of the
// stream is damaged (pebble found a checksum mismatch).
type DataLossError struct {
	Stream string
	// AfterSeq is the last event read intact before the damage (0: none);
	// the first bad seq is the next one in the direction of the read.
	AfterSeq int64
	File     string // the damaged file, when pebble said which
	Cause    error
}

func (e *DataLossError) Error() string {
	file := "a file of the stream"
	if e.File != "" {
		file = e.File
	}
	return fmt.Sprintf("%s stream: data loss: the event after seq %d cannot be read: %s is damaged (%v); "+
		"`cairn journal verify` reports the first bad seq, and a backup restores it (cairn daemon --restore)",
		e.Stream, e.AfterSeq, file, firstLine(e.Cause))
}

func (e *DataLossError) Is(target error) bool { return target == ErrDataLoss }
func (e *DataLossError) Unwrap() error        { return e.Cause }

// firstLine is err's message up to its first newline: pebble's corruption
// errors carry stack traces after it.
func firstLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// readError turns an error from reading the stream into a *DataLossError
// when pebble found corruption, and returns any other error as it is.
func (s *Stream) readError(err error, afterSeq int64) error {
	if err == nil || !pebble.IsCorruptionError(err) {
		return err
	}
	file := s.damagedFile(err)
	if file == "" {
		file, _ = s.lastCorrupt.Load().(string)
	}
	return &DataLossError{Stream: s.name, AfterSeq: afterSeq, File: file, Cause: err}
}

// pebbleFile is how pebble names a file in a corruption error it does not
// report to the event listener (a blob file's).
var pebbleFile = regexp.MustCompile(`\bfile (\d{6,})\b`)

// damagedFile finds the file a corruption error names by number, a blob
// file or an sstable of the stream, or "".
func (s *Stream) damagedFile(err error) string {
	m := pebbleFile.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	for _, ext := range []string{".blob", ".sst"} {
		p := s.j.opts.FS.PathJoin(s.dir, m[1]+ext)
		if _, err := s.j.opts.FS.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// IsDataLoss reports whether err comes from damaged storage: a
// *DataLossError, or a corruption pebble reported on a path that does not
// name seqs (a projection read).
func IsDataLoss(err error) bool {
	return errors.Is(err, ErrDataLoss) || pebble.IsCorruptionError(err)
}
