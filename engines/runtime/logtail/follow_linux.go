package logtail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Follow opens path at offset and follows it until ctx ends, as
// Tailer.Follow does. It releases nothing: a caller that commits offsets
// uses a Tailer and its Release.
func Follow(ctx context.Context, path string, offset int64, emit func(batch []Line) error) error {
	t, err := Open(path, offset, Options{})
	if err != nil {
		return err
	}
	defer t.Close()
	return t.Follow(ctx, emit)
}

// Drain reads path from offset to its current end, as Tailer.Drain does,
// and returns the final offset.
func Drain(path string, offset int64, emit func(batch []Line) error) (int64, error) {
	t, err := Open(path, offset, Options{})
	if err != nil {
		return offset, err
	}
	defer t.Close()
	return t.Drain(emit)
}

// Follow emits every complete line as it is written, in batches of the
// lines one read finds, and waits for more with inotify. When ctx ends it
// emits the complete lines already in the file and returns nil; an
// unfinished last line stays for the next Follow or Drain. It returns an
// emit error as is (wrapped), with the batch not counted as emitted.
func (t *Tailer) Follow(ctx context.Context, emit func(batch []Line) error) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("follow log %s: inotify: %w", t.path, err)
	}
	// A non-blocking descriptor makes a pollable File, whose Read waits in
	// the runtime's poller and ends at a deadline.
	events := os.NewFile(uintptr(fd), "inotify")
	// Closing an inotify instance waits for the kernel's fsnotify SRCU
	// grace period (10-20 ms seen here): close it aside, so that the end
	// of a container's output is not held up by it.
	defer func() { go events.Close() }()
	// The watch is in place before the first read, so a write after that
	// read queues an event and is never missed.
	if _, err := unix.InotifyAddWatch(fd, t.path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		return fmt.Errorf("follow log %s: watch: %w", t.path, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = events.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	var ev [4096]byte
	for {
		if ctx.Err() != nil {
			return t.drain(emit, false)
		}
		atEnd, err := t.readOnce(emit, -1)
		if err != nil {
			return err
		}
		if !atEnd {
			continue
		}
		if err := t.checkSize(); err != nil {
			return err
		}
		// One read takes every queued event; what they say does not
		// matter, only that the file may have grown.
		if _, err := events.Read(ev[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("follow log %s: wait: %w", t.path, err)
		}
	}
}

// checkSize fails when the file is shorter than what was read: someone
// truncated it, and following on would wait for bytes that never come.
func (t *Tailer) checkSize() error {
	st, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("follow log %s: %w", t.path, err)
	}
	if read := t.base + int64(t.n); st.Size() < read {
		return fmt.Errorf("follow log %s: the file shrank to %d bytes below the %d already read (truncated?)", t.path, st.Size(), read)
	}
	return nil
}

// Release tells the Tailer that everything before offset is committed
// and will not be read again: the whole 64 KiB chunks before it are
// punched out of the file (its size stays, the blocks are freed). offset
// may not lie beyond what was handed to emit; an emit may release its own
// batch once it has committed it.
func (t *Tailer) Release(offset int64) error {
	if emitted := t.handed.Load(); offset > emitted {
		return fmt.Errorf("release log %s to %d: only %d was emitted", t.path, offset, emitted)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	end := offset &^ (punchChunk - 1)
	if end <= t.punched {
		return nil
	}
	switch {
	case t.closed:
		return fmt.Errorf("release log %s: closed", t.path)
	case !t.canPunch:
		return fmt.Errorf("release log %s: opened read-only (no write permission), cannot punch holes", t.path)
	}
	err := unix.Fallocate(int(t.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, t.punched, end-t.punched)
	if err != nil {
		return fmt.Errorf("release log %s to %d: punch hole: %w", t.path, end, err)
	}
	t.punched = end
	return nil
}
