package journal

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func isWALDamage(err error) bool {
	var d *WALDamageError
	return errors.As(err, &d)
}

// Repair states, per stream.
const (
	RepairIntact       = "intact"       // the stream opened as it was
	RepairRepaired     = "repaired"     // a damaged WAL was cut back to its last whole batch
	RepairUnrepairable = "unrepairable" // something other than a WAL is damaged; see Detail
)

// RepairReport says what Repair found and did in one stream.
type RepairReport struct {
	Stream string `json:"stream"`
	Status string `json:"status"`
	// The damaged write-ahead log, where its damage starts, and how many
	// whole batches before that point were kept.
	WAL    string `json:"wal,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Kept   int    `json:"kept_batches,omitempty"`
	// Moved are the WAL files set aside in LostFound: the damaged one as it
	// was, and every later one (their events would follow a gap).
	Moved     []string `json:"moved,omitempty"`
	LostFound string   `json:"lost_found,omitempty"`
	Detail    string   `json:"detail,omitempty"`
}

// walNamed matches pebble's note of the WAL it was replaying.
var walNamed = regexp.MustCompile(`replaying wal (\d+)`)

// Repair makes the streams under dir open again after damage to their
// write-ahead logs, the one kind of damage that stops the daemon from
// starting. It runs with the daemon stopped. A stream whose WAL is damaged
// in its middle (not a torn tail, which pebble recovers by itself) keeps
// every whole batch before the damage: the damaged log is copied to
// <dir>/lost+found/<stream>-<time>/ and cut back, and later logs, whose
// events would follow a gap in the chain, are moved there too. What was
// cut is lost, unless another node or a capture file holds it (journal
// import puts it back). Damage anywhere else (a table, the manifest) is
// reported, not repaired: reads that reach a damaged table already fail
// with data_loss naming it, and the rest of the stream stays readable.
func Repair(dir string, now time.Time, log *slog.Logger) ([]RepairReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	names, err := streamDirs(dir)
	if err != nil {
		return nil, err
	}
	var out []RepairReport
	for _, name := range names {
		r, err := repairStream(dir, name, now, log)
		if err != nil {
			return out, fmt.Errorf("repair stream %s: %w", name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// streamDirs lists the subdirectories of dir that hold a pebble store.
func streamDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read data directory: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || e.Name() == lostFound {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(dir, e.Name(), "MANIFEST-*")); len(m) > 0 {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s holds no journal streams: give the daemon's data directory (--data)", dir)
	}
	return names, nil
}

const lostFound = "lost+found"

func repairStream(dir, name string, now time.Time, log *slog.Logger) (RepairReport, error) {
	sdir := filepath.Join(dir, name)
	rep := RepairReport{Stream: name, Status: RepairIntact}
	// Each pass cuts one damaged WAL; more passes than WALs means pebble
	// keeps failing for another reason.
	for pass := 0; ; pass++ {
		err := probe(sdir)
		if err == nil {
			err = checkLatestWAL(vfs.Default, name, sdir)
		}
		if err == nil {
			return rep, nil
		}
		num, ok := damagedWAL(err)
		if !ok || pass > 16 {
			rep.Status, rep.Detail = RepairUnrepairable, firstLine(err)
			if !pebble.IsCorruptionError(err) && !isWALDamage(err) {
				return rep, fmt.Errorf("open: %w", err)
			}
			return rep, nil
		}
		if err := cutWAL(sdir, num, &rep, filepath.Join(dir, lostFound, fmt.Sprintf("%s-%s", name, now.UTC().Format("20060102T150405Z")))); err != nil {
			return rep, err
		}
		rep.Status, rep.Detail = RepairRepaired, firstLine(err)
		log.Warn("cut back a damaged write-ahead log", "stream", name, "wal", rep.WAL, "offset", rep.Offset, "kept_batches", rep.Kept, "moved", rep.Moved)
	}
}

// probe opens the store read-only, which replays its WALs as the daemon's
// open would, and closes it.
func probe(sdir string) error {
	db, err := pebble.Open(sdir, &pebble.Options{ReadOnly: true, Logger: quietPebble{}})
	if err != nil && strings.Contains(err.Error(), "lock") && !pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: the journal is in use; stop the daemon first", err)
	}
	if err != nil {
		return err
	}
	return db.Close()
}

// damagedWAL is the number of the WAL whose replay failed with corruption.
func damagedWAL(err error) (uint64, bool) {
	if d, ok := errors.AsType[*WALDamageError](err); ok {
		n, perr := strconv.ParseUint(strings.TrimSuffix(d.WAL, ".log"), 10, 64)
		return n, perr == nil
	}
	if !pebble.IsCorruptionError(err) {
		return 0, false
	}
	m := walNamed.FindStringSubmatch(fmt.Sprintf("%+v", err))
	if m == nil {
		return 0, false
	}
	n, perr := strconv.ParseUint(m[1], 10, 64)
	return n, perr == nil
}

// cutWAL keeps the whole batches of WAL num before its damage, and moves
// the damaged original and every later WAL to lf.
func cutWAL(sdir string, num uint64, rep *RepairReport, lf string) error {
	wals, err := walFiles(vfs.Default, sdir)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(wals, func(w walFile) bool { return w.num == num })
	if i < 0 {
		return fmt.Errorf("WAL %d is not in %s", num, sdir)
	}
	path := filepath.Join(sdir, wals[i].name)
	sc, err := scanWAL(vfs.Default, path, num)
	if err != nil {
		return err
	}
	good, kept := sc.good, sc.kept
	if err := os.MkdirAll(lf, 0o700); err != nil {
		return err
	}
	if err := copyFile(path, filepath.Join(lf, wals[i].name)); err != nil {
		return err
	}
	for _, w := range wals[i+1:] {
		if err := os.Rename(filepath.Join(sdir, w.name), filepath.Join(lf, w.name)); err != nil {
			return err
		}
		rep.Moved = append(rep.Moved, w.name)
	}
	if err := truncateSync(path, good); err != nil {
		return err
	}
	rep.WAL, rep.Offset, rep.Kept, rep.LostFound = wals[i].name, good, kept, lf
	rep.Moved = append([]string{wals[i].name + " (as it was)"}, rep.Moved...)
	return syncDir(sdir)
}

type walFile struct {
	num  uint64
	name string
}

// walFiles lists the stream's WALs (NNNNNN.log), oldest first.
func walFiles(fs vfs.FS, sdir string) ([]walFile, error) {
	names, err := fs.List(sdir)
	if err != nil {
		return nil, err
	}
	var out []walFile
	for _, name := range names {
		base, ok := strings.CutSuffix(name, ".log")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue // a failover secondary (NNNNNN-NNN.log): not written by cairn
		}
		out = append(out, walFile{n, name})
	}
	slices.SortFunc(out, func(a, b walFile) int { return cmp.Compare(a.num, b.num) })
	return out, nil
}

// walScan is what a read of one WAL found: the offset just past its last
// whole batch before any damage, how many batches that is, and whether a
// whole batch follows the damage (then the damage is not a torn tail).
type walScan struct {
	good    int64
	kept    int
	damaged bool
}

// scanWAL reads the WAL at path with pebble's own record reader. Where the
// reader stops before the end of the file, it looks at every later block
// boundary for a whole record of this log: finding one means bytes in
// the middle of the log were damaged, which pebble's replay of the latest
// log would take for a torn tail and silently end at.
func scanWAL(fs vfs.FS, path string, num uint64) (walScan, error) {
	f, err := fs.Open(path)
	if err != nil {
		return walScan{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return walScan{}, err
	}
	size := st.Size()
	var sc walScan
	var buf bytes.Buffer
	rr := newRecordReader(record.NewReader, io.NewSectionReader(f, 0, size), num)
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return sc, nil
		}
		if err == nil {
			buf.Reset()
			_, err = io.Copy(&buf, r)
		}
		if err != nil || buf.Len() < batchHeaderLen {
			if errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) {
				sc.damaged = true
				return sc, nil
			}
			break
		}
		sc.kept++
		sc.good = rr.Offset()
	}
	for at := (sc.good/walBlock + 1) * walBlock; at < size; at += walBlock {
		rr := newRecordReader(record.NewReader, io.NewSectionReader(f, at, size-at), num)
		if r, err := rr.Next(); err == nil {
			if n, err := io.Copy(io.Discard, r); err == nil && n >= batchHeaderLen {
				sc.damaged = true
				return sc, nil
			}
		}
	}
	return sc, nil
}

// walBlock is the block size of pebble's log format.
const walBlock = 32 << 10

// WALDamageError is a write-ahead log damaged in its middle: opening the
// stream would drop the acknowledged events after the damage without a
// word, so the journal refuses to open until journal repair decides.
type WALDamageError struct {
	Stream string
	WAL    string
	Offset int64
}

func (e *WALDamageError) Error() string {
	return fmt.Sprintf("stream %s: write-ahead log %s is damaged at offset %d and whole batches follow the damage, so this is not a torn tail: "+
		"opening would silently drop acknowledged events. Stop, copy the data directory if you wish, then run `cairn journal repair` (docs/security.md, \"Corruption\")",
		e.Stream, e.WAL, e.Offset)
}

// checkLatestWAL finds damage in the middle of a stream's latest WAL,
// which pebble's replay tolerates as a torn tail (older logs it replays
// strictly).
func checkLatestWAL(fs vfs.FS, stream, sdir string) error {
	wals, err := walFiles(fs, sdir)
	if err != nil || len(wals) == 0 {
		return err
	}
	w := wals[len(wals)-1]
	sc, err := scanWAL(fs, fs.PathJoin(sdir, w.name), w.num)
	if err != nil {
		return fmt.Errorf("check write-ahead log %s: %w", w.name, err)
	}
	if sc.damaged {
		return &WALDamageError{Stream: stream, WAL: w.name, Offset: sc.good}
	}
	return nil
}

// batchHeaderLen is pebble's batch header: an 8-byte sequence number and
// a 4-byte count.
const batchHeaderLen = 12

// newRecordReader calls record.NewReader, whose log-number parameter has
// a type of pebble's internal package that cairn cannot name.
func newRecordReader[N ~uint64](mk func(io.Reader, N) *record.Reader, r io.Reader, num uint64) *record.Reader {
	return mk(r, N(num))
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// quietPebble drops pebble's log lines during a probe: its errors come
// back as the open's error.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
