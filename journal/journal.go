package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// Options configures Open.
type Options struct {
	// Dir is the data directory; each stream lives in Dir/NAME (Dir/audit,
	// Dir/capture, …).
	Dir string
	// FS is pebble's file system; default vfs.Default. Tests use vfs.NewMem()
	// and errorfs.
	FS vfs.FS
	// Node is written into Body.Node by Append when it is empty.
	Node string
	// Logger receives the journal's and pebble's messages; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Reserve is the free space (bytes) below which appends fail with
	// ErrResourceExhausted (default 256 MiB). CaptureReserve is the capture
	// stream's higher floor (default 2×Reserve).
	Reserve, CaptureReserve uint64
	// DiskFree reports the free space of a stream's directory. The default
	// is statfs (Bavail×Bsize) on vfs.Default, and FS.GetDiskUsage on any
	// other FS (unlimited where that is unsupported, as on vfs.NewMem()).
	DiskFree func(dir string) (uint64, error)
	// DiskFreeTrusted lets the committer, far from the reserve, trust a
	// reading of DiskFree for up to 100ms (commitReserve). Open sets it
	// when it supplies DiskFree itself; a DiskFree that a test changes at
	// will is asked before every commit group.
	DiskFreeTrusted bool
	// Retention limits the capture stream.
	Retention Retention
	// Streams are the streams beyond audit and capture, declared by the
	// modules that write them (see StreamSpec).
	Streams []StreamSpec
	// Engines maps a stream name to the engines that fold that stream.
	Engines map[string][]Engine
	// SubscriberBuffer is how many live events a subscription buffers before
	// it falls back to reading the journal (default 4096).
	SubscriberBuffer int
	// MaxGroupEvents caps the events of one commit group (default 1024; a
	// single larger Append is still committed whole).
	MaxGroupEvents int
	// Signing signs each stream's chain heads with the node's key (sign.go).
	Signing Signing
	// ProjectionCache bounds, in bytes, the memory each stream with engines
	// keeps of the projection values its engines read (projcache.go);
	// default 32 MiB, negative for none.
	ProjectionCache int
}

// Retention bounds a capture-like stream by age and size; zero is unlimited.
// Every is how often the retention pass runs (default 1m).
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
	Every    time.Duration
}

// Journal holds a daemon's streams.
type Journal struct {
	opts    Options
	specs   []StreamSpec
	streams map[string]*Stream

	stopRetention context.CancelFunc
	retentionDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) every stream of the journal in opts.Dir
// (audit, capture and opts.Streams), starts their committers and the
// retention loops of the capture-like ones.
func Open(opts Options) (*Journal, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Reserve == 0 {
		opts.Reserve = 256 << 20
	}
	if opts.CaptureReserve == 0 {
		opts.CaptureReserve = 2 * opts.Reserve
	}
	if opts.DiskFree == nil {
		opts.DiskFree = defaultDiskFree(opts.FS)
		opts.DiskFreeTrusted = true
	}
	if opts.SubscriberBuffer <= 0 {
		opts.SubscriberBuffer = 4096
	}
	if opts.MaxGroupEvents <= 0 {
		opts.MaxGroupEvents = 1024
	}
	if opts.ProjectionCache == 0 {
		opts.ProjectionCache = 32 << 20
	}
	specs, err := streamSpecs(opts)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", opts.Dir, err)
	}
	for name := range opts.Engines {
		if !slices.ContainsFunc(specs, func(sp StreamSpec) bool { return sp.Name == name }) {
			return nil, fmt.Errorf("open journal %s: engines given for unknown stream %q", opts.Dir, name)
		}
	}
	j := &Journal{opts: opts, specs: specs, streams: make(map[string]*Stream)}
	for _, sp := range specs {
		s, err := openStream(j, sp)
		if err != nil {
			for _, s := range j.streams {
				_ = s.close()
			}
			return nil, fmt.Errorf("open journal %s: %w", opts.Dir, err)
		}
		j.streams[sp.Name] = s
	}
	ctx, cancel := context.WithCancel(context.Background())
	j.stopRetention = cancel
	j.retentionDone = make(chan struct{})
	go j.retentionLoops(ctx)
	return j, nil
}

// Stream returns the named stream, or nil if there is none.
func (j *Journal) Stream(name string) *Stream { return j.streams[name] }

// Close stops accepting appends, commits and answers what is queued, ends
// subscriptions (their Next returns ErrClosed) and closes pebble. It is
// idempotent.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.stopRetention()
		<-j.retentionDone
		for _, sp := range j.specs {
			if err := j.streams[sp.Name].close(); err != nil && j.closeErr == nil {
				j.closeErr = err
			}
		}
	})
	return j.closeErr
}

func defaultDiskFree(fs vfs.FS) func(string) (uint64, error) {
	if fs == vfs.Default {
		return func(dir string) (uint64, error) {
			var st unix.Statfs_t
			if err := unix.Statfs(dir, &st); err != nil {
				return 0, fmt.Errorf("statfs %s: %w", dir, err)
			}
			return st.Bavail * uint64(st.Bsize), nil
		}
	}
	return func(dir string) (uint64, error) {
		u, err := fs.GetDiskUsage(dir)
		if errors.Is(err, vfs.ErrUnsupported) {
			return math.MaxUint64, nil
		}
		return u.AvailBytes, err
	}
}

// tip is the end of a stream's chain.
type tip struct {
	seq, time int64
	hash      Hash
}

// Stream is one append-only, hash-chained log with its own pebble instance
// and committer.
type Stream struct {
	// lastCorrupt holds the path of the last file pebble found damaged.
	lastCorrupt *atomic.Value

	j       *Journal
	name    string
	spec    StreamSpec
	dir     string
	db      *pebble.DB
	log     *slog.Logger
	reserve uint64

	engines      []Engine
	engineByName map[string]Engine

	reqs          chan *request
	stop          chan struct{}
	committerDone chan struct{}

	// Owned by the committer goroutine.
	pcache *projCache // nil for a stream without engines
	// freeSeen is the last free-space reading commitReserve trusts.
	freeSeen freeReading
	last     tip
	failed   error
	pending  *request
	inflight *inflight // the group whose fsync runs while the next is built
	owed     *unit     // the record of an unfinished import (ImportOptions.Pending)
	// owedKnown mirrors owed != nil for PendingImport.
	owedKnown atomic.Bool

	durable atomic.Int64
	first   atomic.Int64
	commits atomic.Int64 // groups committed, for tests and stats
	cstats  *commitStats
	signer  *signer // nil without Options.Signing.Key

	mu    sync.Mutex // guards what follows, and publishing durable
	cur   *snapState
	subs  map[*Subscription]struct{}
	iters map[*Iter]struct{}
	snaps map[*snapState]struct{}

	// rw is held shared by every reader while it uses pebble and exclusively
	// by close, so pebble is never closed under a reader.
	rw       sync.RWMutex
	closed   bool
	closedCh chan struct{}

	// noSubjectIndex: the stream writes no s/ keys (capture-like: an
	// append-only log at 100k events/s, where the index costs a third of
	// the compaction work); Scan by subject reads e/ and filters.
	noSubjectIndex bool
}

// dropSubjectIndex removes the s/ keys an older version wrote into a
// stream that no longer keeps that index: nothing reads them, and retention
// would no longer delete them.
func dropSubjectIndex(db *pebble.DB) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefixSubject, UpperBound: PrefixEnd(prefixSubject)})
	if err != nil {
		return err
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil || !found {
		return err
	}
	return db.DeleteRange(prefixSubject, PrefixEnd(prefixSubject), pebble.Sync)
}

// MaxOpenFiles bounds the descriptors one stream's pebble instance keeps
// open (its table cache); the daemon reserves them before it sizes its
// connection limits.
const MaxOpenFiles = 1000

// auditBlockCache is the audit stream's block cache for sstable blocks,
// beyond what its memtables reserve in it (auditOptions).
const auditBlockCache = 64 << 20

// captureOptions tunes pebble for the capture stream: a high-rate,
// append-only log whose e/ keys arrive in order and whose only index is by
// kind. Larger memtables and files and a deeper L0 mean fewer, larger
// flushes and compactions (docs/benchmarks.md, "Capture ingest").
//
// A record of 256 bytes or more (a log line of the logs stream, a long
// command line) goes to a blob file at flush (pebble's value separation),
// and its sstable keeps a reference: compactions then move keys and
// references rather than rewrite every record once per level. A flush's
// blob files hold a contiguous range of seqs, so a retention pass that
// drops a range frees whole blob files; the one it cuts through is
// rewritten once a fifth of it is garbage and it is five minutes old
// (docs/benchmarks.md, "Logs: forward").
func captureOptions(o *pebble.Options) {
	o.MemTableSize = 64 << 20
	o.MemTableStopWritesThreshold = 4
	o.L0CompactionThreshold = 8
	o.L0StopWritesThreshold = 32
	o.LBaseMaxBytes = 256 << 20
	o.TargetFileSizes[0] = 16 << 20
	o.CompactionConcurrencyRange = func() (int, int) { return 1, 2 }
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           256,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
}

// splitByFamily ends a flush's or compaction's output table where the
// key family changes (e/ records, k/ and s/ indexes, p/, m/), so that no
// table spans both records and index keys. A flush's table used to run
// from its first record to its last kind index key, a range that takes in
// every older table holding that kind's index keys: each L0 compaction
// then rewrote the flush's records with them. Alone, the records of a
// flush cover seqs no other table has, and pebble moves their table down
// instead (under logs-forward load, compactions went from 9 % of the
// daemon's CPU to none; docs/benchmarks.md, "Session 14").
func splitByFamily(start []byte) (pebble.SpanPolicy, []byte, error) {
	if len(start) < 2 {
		return pebble.SpanPolicy{}, nil, nil
	}
	return pebble.SpanPolicy{}, PrefixEnd(start[:2]), nil
}

// auditOptions tunes pebble for the audit stream, whose engines read
// their projections on every write (a KV put looks its key up in Decide
// and in Fold): bloom filters make a lookup of a key that is not there
// cost no block reads, and a larger block cache keeps index blocks hot.
// A put writes ≈1.2 KiB (its event, two index keys, the key's current and
// historical version); pebble's default 4 MiB memtable flushed every few
// thousand puts, and flushing and compacting took nearly a fifth of the
// daemon's CPU under etcd's put benchmark; with 64 MiB, under a tenth
// (docs/benchmarks.md, "Session 5"). A flush needs room for the memtable's
// table beside its log, so the memtable is a quarter of the free-space
// reserve, between pebble's 4 MiB and 64 MiB (64 MiB at the default
// 256 MiB reserve).
//
// pebble reserves every memtable's size in the block cache (the one being
// filled, one waiting to be reused, one being flushed): with a 64 MiB
// cache, one 64 MiB memtable left it no room, and every lookup read its
// sstable's index blocks from the file again, on the committer's
// goroutine (docs/benchmarks.md, "Session 15"). So the cache is
// auditBlockCache beside room for two memtables' reservations.
func auditOptions(o *pebble.Options, reserve uint64) {
	o.MemTableSize = min(max(reserve/4>>20<<20, 4<<20), 64<<20)
	o.CacheSize = auditBlockCache + 2*int64(o.MemTableSize)
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
}

func openStream(j *Journal, spec StreamSpec) (*Stream, error) {
	opts, name := j.opts, spec.Name
	dir := opts.FS.PathJoin(opts.Dir, name)
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	if err := syncParents(opts.FS, dir); err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	log := opts.Logger.With("stream", name)
	popts := &pebble.Options{
		FS:                 sizedWALFS{opts.FS},
		Logger:             pebbleLogger{log: log.With("component", "pebble")},
		FormatMajorVersion: pebble.FormatNewest,
		MaxOpenFiles:       MaxOpenFiles,
	}
	popts.Experimental.SpanPolicyFunc = splitByFamily
	// A damaged file is reported to the reader that found it, as a
	// *DataLossError; pebble's default would stop the process.
	lastCorrupt := new(atomic.Value)
	popts.EventListener = &pebble.EventListener{
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			if prev, _ := lastCorrupt.Swap(info.Path).(string); prev != info.Path {
				log.Error("damaged file: reads that reach it fail with data_loss", "file", info.Path, "err", firstLine(info.Details))
			}
		},
	}
	if spec.Class == CaptureLike {
		captureOptions(popts)
	} else {
		auditOptions(popts, opts.Reserve)
	}
	// pebble replays the latest WAL leniently (a torn tail after power
	// loss is normal); damage in its middle would silently end the
	// stream early, so it is looked for first.
	if err := checkLatestWAL(opts.FS, name, dir); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, popts)
	if pebble.IsCorruptionError(err) {
		what := "a file"
		if n, ok := damagedWAL(err); ok {
			what = fmt.Sprintf("write-ahead log %06d.log", n)
		}
		return nil, fmt.Errorf("stream %s: %s is damaged: %w; stop, copy the data directory if you wish, then run `cairn journal repair` (docs/security.md, \"Corruption\")", name, what, err)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	s := &Stream{
		j:             j,
		cstats:        newCommitStats(),
		name:          name,
		spec:          spec,
		dir:           dir,
		db:            db,
		log:           log,
		reserve:       opts.Reserve,
		engineByName:  make(map[string]Engine),
		reqs:          make(chan *request, 1024),
		stop:          make(chan struct{}),
		committerDone: make(chan struct{}),
		subs:          make(map[*Subscription]struct{}),
		iters:         make(map[*Iter]struct{}),
		snaps:         make(map[*snapState]struct{}),
		closedCh:      make(chan struct{}),
		lastCorrupt:   lastCorrupt,
	}
	if spec.Class == CaptureLike {
		s.reserve = opts.CaptureReserve
		s.noSubjectIndex = true
	}
	for _, e := range opts.Engines[name] {
		en := e.Name()
		if !validEngineName(en) {
			_ = db.Close()
			return nil, fmt.Errorf("stream %s: engine name %q: want [a-z0-9_]+", name, en)
		}
		if _, dup := s.engineByName[en]; dup {
			_ = db.Close()
			return nil, fmt.Errorf("stream %s: engine %q registered twice", name, en)
		}
		s.engineByName[en] = e
		s.engines = append(s.engines, e)
	}
	if len(s.engines) > 0 {
		s.pcache = newProjCache(opts.ProjectionCache)
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	if s.noSubjectIndex {
		if err := dropSubjectIndex(db); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	st := &snapState{s: s, snap: db.NewSnapshot(), seq: s.last.seq}
	st.refs.Store(1)
	s.snaps[st] = struct{}{}
	s.cur = st
	s.signer = newSigner(s, opts.Signing)
	go s.run()
	return s, nil
}

// syncParents fsyncs the directories holding dir, up to the root, so that
// a freshly created data directory survives a crash: pebble syncs its own
// directory but not the entry naming it. Only the stream directory's own
// parent must sync; ancestors the daemon may not read are skipped.
func syncParents(fs vfs.FS, dir string) error {
	for level := 0; ; level++ {
		parent := fs.PathDir(dir)
		f, err := fs.OpenDir(parent)
		if err == nil {
			err = errors.Join(f.Sync(), f.Close())
		}
		if err != nil {
			if level == 0 {
				return fmt.Errorf("sync directory %s: %w", parent, err)
			}
			return nil
		}
		if parent == dir || parent == "." || parent == "/" || parent == "" {
			return nil
		}
		dir = parent
	}
}

func validEngineName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// load checks the format version and finds the chain's ends from the last
// and first event keys: nothing is replayed, so opening is quick whatever
// the size of the stream.
func (s *Stream) load() error {
	v, closer, err := s.db.Get(keyFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(keyFormat, binary.AppendUvarint(nil, formatVersion), pebble.Sync); err != nil {
			return fmt.Errorf("write format version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read format version: %w", err)
	default:
		ver, n := binary.Uvarint(v)
		_ = closer.Close()
		if n <= 0 {
			return fmt.Errorf("malformed on-disk format version %x", v)
		}
		if ver > formatVersion {
			return fmt.Errorf("on-disk format version %d is newer than this cairn understands (%d): run a newer cairn", ver, formatVersion)
		}
	}

	var anchorSeq int64
	var anchorHash Hash
	if v, closer, err := s.db.Get(keyAnchor); err == nil {
		anchorSeq, anchorHash, err = decodeAnchor(v)
		_ = closer.Close()
		if err != nil {
			return err
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("read anchor: %w", err)
	}

	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixEvent, UpperBound: PrefixEnd(prefixEvent)})
	if err != nil {
		return err
	}
	defer it.Close()
	s.last = tip{seq: anchorSeq, hash: anchorHash}
	if it.Last() {
		seq, err := seqOfEventKey(it.Key())
		if err != nil {
			return err
		}
		rec := it.Value()
		if err := CheckRecord(rec); err != nil {
			return fmt.Errorf("last event %d: %w", seq, err)
		}
		r := Raw{Stream: s.name, Seq: seq, Record: rec}
		s.last = tip{seq: seq, time: r.Time(), hash: r.Hash()}
		if !it.First() {
			return fmt.Errorf("first event: %w", it.Error())
		}
		first, err := seqOfEventKey(it.Key())
		if err != nil {
			return err
		}
		s.first.Store(first)
	}
	s.durable.Store(s.last.seq)
	if err := it.Error(); err != nil {
		return err
	}
	return s.loadOwed()
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// DurableSeq returns the seq of the last event known to be fsynced.
func (s *Stream) DurableSeq() int64 { return s.durable.Load() }

// FirstSeq returns the oldest seq still stored: 1 unless retention dropped
// some, 0 if the stream is empty.
func (s *Stream) FirstSeq() int64 { return s.first.Load() }

// Stats describes a stream's size.
type Stats struct {
	FirstSeq, LastSeq, Events int64
	Bytes                     int64 // pebble's disk usage
}

// Stats returns the stream's seq range and disk usage.
func (s *Stream) Stats() Stats {
	st := Stats{FirstSeq: s.FirstSeq(), LastSeq: s.DurableSeq()}
	if st.FirstSeq > 0 {
		st.Events = st.LastSeq - st.FirstSeq + 1
	}
	s.rw.RLock()
	defer s.rw.RUnlock()
	if !s.closed {
		st.Bytes = int64(s.db.Metrics().DiskSpaceUsage())
	}
	return st
}

func (s *Stream) close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.committerDone
	s.signer.finish()

	s.rw.Lock()
	defer s.rw.Unlock()
	s.closed = true
	close(s.closedCh)
	s.mu.Lock()
	iters := s.iters
	snaps := s.snaps
	s.iters, s.snaps = nil, nil
	s.cur = nil
	s.subs = nil
	s.mu.Unlock()
	for it := range iters {
		it.forceClose()
	}
	for st := range snaps {
		_ = st.snap.Close()
	}
	// Flushing the memtable makes the next open a few ms: otherwise pebble
	// replays the last writes from its WAL and may wait for a compaction.
	// (Not after a write error: pebble would stop the process.)
	if s.failed == nil {
		if err := s.db.Flush(); err != nil {
			s.log.Warn("flush before close", "err", err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s stream: %w", s.name, err)
	}
	return nil
}
