package journal

import (
	"errors"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// sizedWALFS makes a write-ahead log's size run ahead of its data: before
// a write would pass the file's end, the file is extended by walExtend
// with fallocate (mode 0, as etcd preallocates its WAL segments), so the
// write lands inside the file. Appending past a file's end makes every
// fdatasync also commit the new size to the file system's journal;
// writing inside it does not. On this machine's ext4 that is ≈150 µs
// against ≈210 µs per synced write (docs/benchmarks.md, "Session 5").
// pebble's own preallocation (FALLOC_FL_KEEP_SIZE, 110% of the memtable
// at once) is left out: it reserves blocks without moving the end, and a
// 64 MiB memtable would reserve 70 MiB on a small disk at the first write.
//
// The zeros past the data read as the end of the log, which pebble's log
// reader already handles (a recycled log's tail is older garbage, handled
// the same way); a cleanly closed log ends in pebble's EOF trailer.
type sizedWALFS struct{ vfs.FS }

// walExtend is how far a log is extended at a time: a fallocate every
// ≈850 KV puts, at most this much disk ahead of the data.
const walExtend = 1 << 20

func isWALFile(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs sizedWALFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !isWALFile(name) {
		return f, err
	}
	return newSizedWALFile(f), nil
}

func (fs sizedWALFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil || !isWALFile(newname) {
		return f, err
	}
	return newSizedWALFile(f), nil
}

// sizedWALFile is a log pebble writes from its start, in order, from one
// goroutine (its log writer's).
//
// It also gathers pebble's writes of whole blocks: a log is a run of 32 KiB
// blocks from offset 0, and pebble's log writer writes each full block it
// has queued with its own write(2), then the filled part of the current
// block, then syncs. A write that ends on a block boundary is held, and the
// next one that does not (the current block's part), or a sync, or Close,
// writes what is held and itself at once: a 1 MiB commit group of the logs
// stream took 33 writes, and takes one. What is held is at most walHoldMax.
// A write that ends on a block boundary and is never synced would stay held
// until the next write, and a crash of the process would lose it where the
// page cache would have kept it: so the journal syncs every write it makes
// (the committer's groups, the signer's signatures).
type sizedWALFile struct {
	vfs.File
	fd     int
	off    int64  // where the next Write lands, held bytes included
	extent int64  // the file's size: a recycled log's, or how far it was extended
	held   []byte // whole blocks written by pebble and not yet to the file
}

// walHoldMax bounds the bytes a log holds back.
const walHoldMax = 1 << 20

func newSizedWALFile(f vfs.File) vfs.File {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return f // an in-memory file: nothing to gain
	}
	w := &sizedWALFile{File: f, fd: int(fd)}
	if st, err := f.Stat(); err == nil {
		w.extent = st.Size()
	}
	return w
}

func (f *sizedWALFile) Write(p []byte) (int, error) {
	end := f.off + int64(len(p))
	if end > f.extent {
		grow := (end - f.extent + walExtend - 1) / walExtend * walExtend
		// A file system without fallocate appends as before.
		if err := unix.Fallocate(f.fd, 0, f.extent, grow); err == nil {
			f.extent += grow
		}
	}
	if end%walBlock == 0 && len(f.held)+len(p) <= walHoldMax {
		f.held = append(f.held, p...) // pebble reuses the block once Write returns
		f.off = end
		return len(p), nil
	}
	if len(f.held) == 0 {
		n, err := f.File.Write(p)
		f.off += int64(n)
		return n, err
	}
	f.held = append(f.held, p...)
	if err := f.writeHeld(); err != nil {
		return 0, err
	}
	f.off = end
	return len(p), nil
}

// writeHeld writes the held blocks (and whatever Write appended to them).
// After an error the log is broken, as pebble takes it: the error stops its
// log writer, and no sync after it reports success.
func (f *sizedWALFile) writeHeld() error {
	if len(f.held) == 0 {
		return nil
	}
	_, err := f.File.Write(f.held)
	f.held = f.held[:0]
	return err
}

func (f *sizedWALFile) Sync() error {
	if err := f.writeHeld(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *sizedWALFile) SyncData() error {
	if err := f.writeHeld(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *sizedWALFile) SyncTo(length int64) (fullSync bool, err error) {
	if err := f.writeHeld(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

func (f *sizedWALFile) Close() error {
	return errors.Join(f.writeHeld(), f.File.Close())
}

// Preallocate is pebble's KEEP_SIZE reservation, replaced by Write's.
func (f *sizedWALFile) Preallocate(offset, length int64) error { return nil }
