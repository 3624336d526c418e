// Package logtail follows a container's output file and cuts it into
// lines. The container writes its stdout and stderr straight into files
// the daemon opened O_APPEND, and keeps writing while the daemon is down;
// the daemon follows each file from the offset it last committed, and
// releases the disk behind that offset by punching holes into the file.
package logtail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// DefaultMaxLine is the longest line emitted whole; a longer one is cut
// into parts of this size, as docker cuts its log messages at 16 KiB.
const DefaultMaxLine = 16 << 10

// punchChunk is the granularity of Release: holes are punched in whole,
// aligned 64 KiB chunks, so each punch frees whole filesystem blocks.
const punchChunk = 64 << 10

// maxBatch bounds the lines of one batch, so a read buffer of empty lines
// does not grow the batch beyond the buffer's own size.
const maxBatch = 1024

// Line is one line of the file, or one part of a line longer than
// MaxLine. Text excludes the "\n" and is only valid during the emit call
// that carries it (it points into the Tailer's read buffer).
type Line struct {
	Text    []byte
	Offset  int64 // just past this line (or part) in the file: where to resume after it
	Partial bool  // the line continues in the next Line, as docker's partial messages
}

// Options tune a Tailer; the zero value is docker's behaviour.
type Options struct {
	MaxLine int // DefaultMaxLine when 0
}

// Tailer follows one output file. Follow and Drain are called from one
// goroutine at a time; Release and Offset may be called from any.
type Tailer struct {
	path    string
	f       *os.File
	maxLine int

	// buf[:start] has been emitted, buf[start:n] is read and not yet
	// emitted (at most a line's unfinished start); buf[0] is at file
	// offset base.
	buf      []byte
	base     int64
	start, n int
	lines    []Line
	offset   atomic.Int64 // base+start
	handed   atomic.Int64 // the end of the last batch given to emit: what Release may free

	mu       sync.Mutex // guards what Release and Close share
	punched  int64      // holes cover [0, punched)
	canPunch bool       // the file is open for writing, which fallocate needs
	closed   bool
}

// Open opens path to follow it from offset, which must not lie beyond the
// file's end.
func Open(path string, offset int64, opts Options) (*Tailer, error) {
	maxLine := opts.MaxLine
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	canPunch := true
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrPermission) {
		// Following still works read-only; Release then reports why it
		// cannot free the disk.
		canPunch = false
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	if offset < 0 || offset > st.Size() {
		f.Close()
		return nil, fmt.Errorf("open log %s: offset %d is outside the file's %d bytes (was it truncated or replaced?)", path, offset, st.Size())
	}
	t := &Tailer{
		path:     path,
		f:        f,
		maxLine:  maxLine,
		buf:      make([]byte, max(punchChunk, 2*maxLine)),
		base:     offset,
		lines:    make([]Line, 0, maxBatch),
		canPunch: canPunch,
	}
	t.offset.Store(offset)
	t.handed.Store(offset)
	return t, nil
}

// Offset reports the offset just past the last line emitted.
func (t *Tailer) Offset() int64 { return t.offset.Load() }

// Close closes the file. Follow and Drain must have returned.
func (t *Tailer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if err := t.f.Close(); err != nil {
		return fmt.Errorf("close log %s: %w", t.path, err)
	}
	return nil
}

// Drain reads the file to its current end, emitting every line, and
// returns the final offset. It is for a file whose writer is gone (the
// container exited): an unterminated last line is emitted as a line.
func (t *Tailer) Drain(emit func(batch []Line) error) (int64, error) {
	if err := t.drain(emit, true); err != nil {
		return t.Offset(), err
	}
	return t.Offset(), nil
}

// drain reads up to the file's size at this moment, emitting every
// complete line; final also emits an unterminated last line.
func (t *Tailer) drain(emit func([]Line) error, final bool) error {
	st, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("drain log %s: %w", t.path, err)
	}
	for {
		atEnd, err := t.readOnce(emit, st.Size())
		if err != nil {
			return err
		}
		if atEnd {
			break
		}
	}
	if final {
		return t.emitLines(emit, true)
	}
	return nil
}

// readOnce reads what fits in the buffer, up to limit (no limit when
// negative), and emits the complete lines. atEnd reports that the read
// reached the file's end or limit.
func (t *Tailer) readOnce(emit func([]Line) error, limit int64) (atEnd bool, err error) {
	if t.start > 0 {
		t.n = copy(t.buf, t.buf[t.start:t.n])
		t.base += int64(t.start)
		t.start = 0
	}
	pos := t.base + int64(t.n)
	want := len(t.buf) - t.n
	if limit >= 0 && int64(want) > limit-pos {
		want = int(max(limit-pos, 0))
	}
	if want == 0 {
		return true, nil
	}
	m, err := t.f.ReadAt(t.buf[t.n:t.n+want], pos)
	t.n += m
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read log %s at %d: %w", t.path, pos, err)
	}
	if err := t.emitLines(emit, false); err != nil {
		return false, err
	}
	return m < want, nil
}

// emitLines emits the lines in the buffer, in batches of at most
// maxBatch; final emits an unterminated rest too. A batch emit fails is
// kept in the buffer, so the next call emits it again.
func (t *Tailer) emitLines(emit func([]Line) error, final bool) error {
	for {
		saved := t.start
		batch := t.cut(final)
		if len(batch) == 0 {
			return nil
		}
		t.handed.Store(batch[len(batch)-1].Offset)
		if err := emit(batch); err != nil {
			t.start = saved
			t.handed.Store(t.base + int64(saved))
			return fmt.Errorf("emit lines of log %s at %d: %w", t.path, t.base+int64(saved), err)
		}
		t.offset.Store(t.base + int64(t.start))
	}
}

// cut takes up to maxBatch lines off buf[start:n]. A line longer than
// maxLine is cut into maxLine parts, all but the last Partial, at the same
// places whether the line is in the buffer whole or arrives in pieces: a
// part is only cut once a byte of the line follows it.
func (t *Tailer) cut(final bool) []Line {
	t.lines = t.lines[:0]
	for len(t.lines) < maxBatch {
		rest := t.buf[t.start:t.n]
		if len(rest) == 0 {
			break
		}
		nl := bytes.IndexByte(rest, '\n')
		switch {
		case nl >= 0 && nl <= t.maxLine:
			t.take(rest[:nl], nl+1, false)
		case nl > t.maxLine || (nl < 0 && len(rest) > t.maxLine):
			t.take(rest[:t.maxLine], t.maxLine, true)
		case final:
			t.take(rest, len(rest), false)
		default:
			return t.lines
		}
	}
	return t.lines
}

// take adds the line text, which with its newline takes size bytes.
func (t *Tailer) take(text []byte, size int, partial bool) {
	t.start += size
	t.lines = append(t.lines, Line{Text: text, Offset: t.base + int64(t.start), Partial: partial})
}
