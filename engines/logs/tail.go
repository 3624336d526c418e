package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// tailPoll is how often a tailed file is looked at when it has nothing
// new: as in_tail's stat watcher, no inotify (it misses renames on some
// filesystems and needs a watch per directory).
const tailPoll = 200 * time.Millisecond

// tailBuffer is how much of a file one read takes, 256 KiB; a line longer
// than that is stored in pieces of that size.
const tailBuffer = 256 << 10

// tailConfig is one `logs tail add`.
type tailConfig struct {
	Path   string `json:"path"`
	Tag    string `json:"tag"`
	Format string `json:"format"`
	Pos    string `json:"pos"` // start or end, where a file never read starts
}

// tailPos is where a tail is in its file: the file's inode and the offset
// just past the last line stored. Every record carries it (source.ino,
// source.offset), so the journal keeps it with the records themselves.
type tailPos struct {
	ino    uint64
	offset int64
}

// follower follows one file across rotation by rename (a new inode at
// the path: the old file is read to its end first) and by copytruncate
// (the file shorter than the offset: it starts again at 0).
type follower struct {
	m      *module
	cfg    tailConfig
	format lineFormat
	pos    tailPos
	known  bool // pos is from the journal (or the file was opened once)
	f      *os.File
}

func inodeOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// run follows the file until ctx ends.
func (fl *follower) run(ctx context.Context) {
	defer func() {
		if fl.f != nil {
			fl.f.Close()
		}
	}()
	buf := make([]byte, tailBuffer)
	for {
		progressed, err := fl.step(ctx, buf)
		if err != nil && ctx.Err() == nil {
			fl.m.log.Warn("tail", "path", fl.cfg.Path, "err", err)
		}
		if progressed && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(tailPoll):
		}
	}
}

// step opens the file if need be, stores what it has beyond the offset,
// and looks for rotation. It reports whether it stored anything.
func (fl *follower) step(ctx context.Context, buf []byte) (bool, error) {
	if fl.f == nil {
		f, err := os.Open(fl.cfg.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return false, err
		}
		ino := inodeOf(fi)
		switch {
		case fl.known && ino == fl.pos.ino:
			// Resume where the journal says.
		case fl.known:
			fl.pos = tailPos{ino: ino} // a new file since: from its start
		case fl.cfg.Pos == "start":
			fl.pos = tailPos{ino: ino}
		default:
			fl.pos = tailPos{ino: ino, offset: fi.Size()}
		}
		fl.known = true
		fl.f = f
	}
	fi, err := fl.f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() < fl.pos.offset {
		// copytruncate: the file was emptied under us.
		fl.m.stats.add("tail", "truncations", 1)
		fl.pos.offset = 0
	}
	n, err := fl.read(ctx, buf)
	if err != nil || n > 0 {
		return n > 0, err
	}
	// Nothing new in this file: has the path moved on to another one?
	pfi, err := os.Stat(fl.cfg.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err == nil && inodeOf(pfi) == fl.pos.ino {
		return false, nil
	}
	if err != nil {
		return false, nil // renamed away, nothing new yet at the path
	}
	// Rotated by rename: read what the old file got last, then the new.
	if n, err := fl.read(ctx, buf); err != nil || n > 0 {
		return n > 0, err
	}
	fl.m.stats.add("tail", "rotations", 1)
	fl.f.Close()
	fl.f = nil
	fl.pos = tailPos{ino: inodeOf(pfi)}
	return true, nil
}

// read stores the complete lines past the offset, one append per buffer,
// each record carrying the offset just past its line.
func (fl *follower) read(ctx context.Context, buf []byte) (int, error) {
	total := 0
	for {
		n, err := fl.f.ReadAt(buf, fl.pos.offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return total, err
		}
		chunk := buf[:n]
		var recs []Record
		var offsets []int64
		off := fl.pos.offset
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				if off != fl.pos.offset || n < len(buf) {
					break // a line still being written
				}
				// A line longer than the buffer: stored in pieces of its size.
				i = len(chunk)
				line := chunk
				off += int64(i)
				chunk = nil
				fields, _ := fl.format.parse(string(line))
				recs = append(recs, Record{Tag: fl.cfg.Tag, Time: time.Now(), Fields: fields})
				offsets = append(offsets, off)
				fl.m.stats.add("tail", "long_lines", 1)
				break
			}
			line := chunk[:i]
			off += int64(i + 1)
			chunk = chunk[i+1:]
			text := string(bytes.TrimSuffix(line, []byte{'\r'}))
			fields, ok := fl.format.parse(text)
			if !ok {
				fl.m.stats.add("tail", "unparsed", 1)
			}
			recs = append(recs, Record{Tag: fl.cfg.Tag, Time: time.Now(), Fields: fields})
			offsets = append(offsets, off)
		}
		if len(recs) == 0 {
			return total, nil
		}
		if err := fl.m.storeTail(ctx, fl.cfg.Path, fl.pos.ino, recs, offsets); err != nil {
			return total, err
		}
		fl.pos.offset = off
		total += len(recs)
	}
}

// storeTail appends a tailed file's records, each with its position.
func (m *module) storeTail(ctx context.Context, path string, ino uint64, recs []Record, offsets []int64) error {
	// A line a route drops is not stored; its position is then not
	// either, so a restarted daemon reads it again and the route drops it
	// again.
	for i := range recs {
		recs[i].offset = offsets[i]
	}
	if recs = m.routes.apply(recs, m.stats, "tail"); len(recs) == 0 {
		return nil
	}
	bodies := make([]*journal.Body, len(recs))
	actor := journal.SystemActor()
	for i, r := range recs {
		bodies[i] = &journal.Body{Kind: RecordKind, Subject: r.Tag, Node: m.node, Actor: actor,
			Data: map[string]any{"tag": r.Tag, "time": r.Time.UnixNano(), "record": r.Fields,
				"source": map[string]any{"input": "tail", "path": path, "ino": ino, "offset": r.offset}}}
		if r.route != "" {
			bodies[i].Data["route"] = r.route
		}
	}
	if _, err := m.logs.Append(ctx, bodies...); err != nil {
		m.stats.add("tail", "store_failed", int64(len(recs)))
		return err
	}
	m.stats.add("tail", "records", int64(len(recs)))
	return nil
}
