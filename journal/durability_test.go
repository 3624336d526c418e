package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func isWAL(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".log") }

func isSync(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
}

// TestNotVisibleWhileSyncing holds the WAL fsync of an append and checks
// that pebble already has the batch while no reader of the journal sees it.
func TestNotVisibleWhileSyncing(t *testing.T) {
	var block atomic.Bool
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if block.Load() && isWAL(op) && isSync(op) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	}))
	j := mustOpen(t, testOptions(fs))
	defer j.Close()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { block.Store(false); close(release) }) }
	defer unblock() // before Close, which waits for the held commit
	s := j.Stream(Audit)
	mustAppend(t, s, body("test.emit", "a", nil))

	ctx := t.Context()
	sub := s.Subscribe(ctx, 1, nil)
	defer sub.Close()
	if it, err := sub.Next(ctx); err != nil || it.Raw.Seq != 1 {
		t.Fatalf("first item: %+v %v", it, err)
	}

	block.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), body("test.emit", "b", nil))
		done <- err
	}()
	<-entered
	// pebble applies the batch to its memtable while the WAL syncs (the
	// sync may start first): wait until it is readable there.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, closer, err := s.db.Get(eventKey(2))
		if err == nil {
			closer.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expected pebble to show the unsynced batch: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if d := s.DurableSeq(); d != 1 {
		t.Fatalf("durable %d while syncing", d)
	}
	if raws := collect(t, s.Scan(Query{})); len(raws) != 1 {
		t.Fatalf("scan sees %s while syncing", seqs(raws))
	}
	sn := s.Snapshot()
	if raws := collect(t, sn.Scan(Query{})); len(raws) != 1 || sn.Seq() != 1 {
		t.Fatalf("snapshot %d sees %s while syncing", sn.Seq(), seqs(raws))
	}
	sn.Close()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if it, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("subscriber got %+v %v while syncing", it, err)
	}
	cancel()

	unblock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if it, err := sub.Next(ctx); err != nil || it.Raw.Seq != 2 {
		t.Fatalf("after sync: %+v %v", it, err)
	}
}

// TestWALErrors injects WAL write and sync errors. Pebble hands them to
// SyncWait (pebble.DB.Apply would call Logger.Fatalf instead), so the
// append fails, the stream refuses further writes, and a restart finds
// every acknowledged event. Errors elsewhere in pebble's commit path (e.g.
// creating a new WAL at memtable rotation) reach Logger.Fatalf, which
// panics: the process stops and the restart test below covers it.
func TestWALErrors(t *testing.T) {
	for _, kind := range []string{"write", "sync"} {
		t.Run(kind, func(t *testing.T) {
			mem := vfs.NewMem()
			var on atomic.Bool
			fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if !on.Load() || !isWAL(op) {
					return nil
				}
				if kind == "sync" && isSync(op) || kind == "write" && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) {
					return errorfs.ErrInjected
				}
				return nil
			}))
			j := mustOpen(t, testOptions(fs))
			s := j.Stream(Audit)
			var acked []Committed
			for i := range 20 {
				acked = append(acked, mustAppend(t, s, body("test.emit", fmt.Sprint(i), nil))...)
			}
			on.Store(true)
			if c, err := s.Append(context.Background(), body("test.emit", "fails", nil)); err == nil {
				t.Fatalf("append acknowledged %+v despite a WAL %s error", c, kind)
			} else {
				t.Logf("append: %v", err)
			}
			if s.DurableSeq() != 20 {
				t.Fatalf("durable moved to %d", s.DurableSeq())
			}
			if _, err := s.Append(context.Background(), body("test.emit", "after", nil)); err == nil {
				t.Fatal("stream accepted an append after a WAL error")
			}
			if raws := collect(t, s.Scan(Query{})); len(raws) != 20 {
				t.Fatalf("reads after the error: %d events", len(raws))
			}
			on.Store(false)
			if err := j.Close(); err != nil {
				t.Logf("close after WAL error: %v", err)
			}
			j = mustOpen(t, testOptions(mem))
			defer j.Close()
			s = j.Stream(Audit)
			raws := collect(t, s.Scan(Query{}))
			checkChain(t, raws, 1)
			for _, c := range acked {
				if c.Seq > int64(len(raws)) || raws[c.Seq-1].Hash() != c.Hash {
					t.Fatalf("acknowledged seq %d lost", c.Seq)
				}
			}
			// The stream goes on from whatever the WAL held.
			c := mustAppend(t, s, body("test.emit", "later", nil))
			if c[0].Seq != int64(len(raws))+1 {
				t.Fatalf("seq after restart %d, %d stored", c[0].Seq, len(raws))
			}
		})
	}
}

func TestRestartContinuesChain(t *testing.T) {
	for _, name := range []string{"mem", "dir"} {
		t.Run(name, func(t *testing.T) {
			var opts Options
			if name == "mem" {
				opts = testOptions(vfs.NewMem())
			} else {
				opts = Options{Dir: t.TempDir(), Logger: quietLogger()} // real statfs, real fsync
			}
			j := mustOpen(t, opts)
			for i := range 50 {
				mustAppend(t, j.Stream(Audit), body("test.emit", fmt.Sprint(i), nil))
			}
			mustAppend(t, j.Stream(Capture), body("capture.exec", "pid/1", nil))
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
			if _, err := j.Stream(Audit).Append(context.Background(), body("test.emit", "x", nil)); !errors.Is(err, ErrClosed) {
				t.Fatalf("append after close: %v", err)
			}
			j = mustOpen(t, opts)
			defer j.Close()
			s := j.Stream(Audit)
			if s.DurableSeq() != 50 || s.FirstSeq() != 1 {
				t.Fatalf("reopened at %d..%d", s.FirstSeq(), s.DurableSeq())
			}
			c := mustAppend(t, s, body("test.emit", "after", nil))
			if c[0].Seq != 51 {
				t.Fatalf("seq after restart %d", c[0].Seq)
			}
			raws := collect(t, s.Scan(Query{}))
			checkChain(t, raws, 1)
			if rep, err := s.Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.Last != 51 {
				t.Fatalf("verify %+v %v", rep, err)
			}
			if st := j.Stream(Capture).Stats(); st.LastSeq != 1 || st.Events != 1 || st.Bytes <= 0 {
				t.Fatalf("capture stats %+v", st)
			}
		})
	}
}

// TestCrashKeepsAcknowledged takes crash images of the file system while
// writers run: every append acknowledged before the image is in it.
func TestCrashKeepsAcknowledged(t *testing.T) {
	fs := vfs.NewCrashableMem()
	j := mustOpen(t, testOptions(fs))
	defer j.Close()
	s := j.Stream(Audit)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	acked := map[int64]Hash{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := s.Append(ctx, body("test.emit", fmt.Sprint(w), nil))
				if err != nil {
					continue
				}
				mu.Lock()
				acked[c[0].Seq] = c[0].Hash
				mu.Unlock()
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 3 {
		time.Sleep(time.Duration(20+rng.IntN(50)) * time.Millisecond)
		mu.Lock()
		want := make(map[int64]Hash, len(acked))
		for k, v := range acked {
			want[k] = v
		}
		mu.Unlock()
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng})
		cj := mustOpen(t, testOptions(crashed))
		cs := cj.Stream(Audit)
		raws := collect(t, cs.Scan(Query{}))
		checkChain(t, raws, 1)
		for seq, h := range want {
			if seq > int64(len(raws)) || raws[seq-1].Hash() != h {
				t.Fatalf("round %d: acknowledged seq %d lost in the crash (%d recovered)", round, seq, len(raws))
			}
		}
		if rep, err := cs.Verify(context.Background()); err != nil || rep.BadSeq != 0 {
			t.Fatalf("verify after crash: %+v %v", rep, err)
		}
		t.Logf("round %d: %d acknowledged, %d recovered", round, len(want), len(raws))
		if err := cj.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
}

func TestNewerFormatRefused(t *testing.T) {
	fs := vfs.NewMem()
	j := mustOpen(t, testOptions(fs))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawPebble(t, fs, Capture)
	if err := db.Set(keyFormat, binary.AppendUvarint(nil, formatVersion+1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(testOptions(fs))
	if err == nil || !strings.Contains(err.Error(), "newer than this cairn understands") {
		t.Fatalf("open of a newer format: %v", err)
	}
	t.Log(err)
}

func TestReserve(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 40)
	opts := testOptions(vfs.NewMem())
	opts.Reserve = 100 << 20
	opts.DiskFree = func(string) (uint64, error) { return free.Load(), nil }
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	mustAppend(t, s, body("test.emit", "a", nil))

	free.Store(50 << 20)
	_, err := s.Append(context.Background(), body("test.emit", "b", nil))
	if !errors.Is(err, ErrResourceExhausted) {
		t.Fatalf("append below the reserve: %v", err)
	}
	if !strings.Contains(err.Error(), "free space on /data/audit (50 MiB) is below the reserve (100 MiB)") {
		t.Fatalf("message: %v", err)
	}
	// The capture floor is twice the reserve.
	free.Store(150 << 20)
	mustAppend(t, s, body("test.emit", "c", nil))
	if _, err := j.Stream(Capture).Append(context.Background(), body("capture.exec", "pid/1", nil)); !errors.Is(err, ErrResourceExhausted) {
		t.Fatalf("capture below its floor: %v", err)
	}
	free.Store(50 << 20)
	if raws := collect(t, s.Scan(Query{})); len(raws) != 2 {
		t.Fatalf("scan below the reserve: %d events", len(raws))
	}
	free.Store(1 << 40)
	c := mustAppend(t, s, body("test.emit", "d", nil))
	if c[0].Seq != 3 {
		t.Fatalf("seq %d after the reserve cleared", c[0].Seq)
	}
}

// TestReserveTrustedReading: with DiskFreeTrusted, a reading far above
// the reserve spares the next groups a statfs; near the reserve, or once
// enough was written since, each group reads the free space again.
func TestReserveTrustedReading(t *testing.T) {
	var free atomic.Uint64
	var reads atomic.Int64
	opts := testOptions(vfs.NewMem())
	opts.Reserve = 100 << 20
	opts.DiskFree = func(string) (uint64, error) { reads.Add(1); return free.Load(), nil }
	opts.DiskFreeTrusted = true
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	appends := func(n, size int) int64 {
		t.Helper()
		before := reads.Load()
		for i := range n {
			mustAppend(t, s, body("test.emit", "a", map[string]any{"i": i, "pad": strings.Repeat("x", size)}))
		}
		return reads.Load() - before
	}

	free.Store(1 << 40)
	start := time.Now()
	// Each reading is trusted for freeTrustFor: one at the start and one
	// per window that passed, however slow the machine.
	if n, most := appends(50, 10), 1+int64(time.Since(start)/freeTrustFor); n > most {
		t.Errorf("far from the reserve: %d free-space reads for 50 groups, want at most %d", n, most)
	}
	// 100 MiB + the 64 MiB margin + 1 MiB: 128 KiB written since the
	// reading (×8) spends the rest, so every group or so reads again.
	free.Store(165 << 20)
	s.freeSeen = freeReading{} // forget the reading of 1 TiB (the committer is idle)
	if n := appends(20, 200<<10); n < 10 {
		t.Errorf("1 MiB above the margin, 200 KiB a group: %d reads for 20 groups, want one every group or two", n)
	}
	// A batch over half a memtable (25 MiB here: a quarter of the
	// reserve), which pebble takes over and empties, counts all the same:
	// 13 MiB ×8 spends 100 MiB of room.
	free.Store((100 + 64 + 100) << 20)
	s.freeSeen = freeReading{trustFor: time.Hour} // however long 13 MiB takes to hash
	appends(1, 10)
	if n := appends(1, 13<<20) + appends(1, 10); n < 1 {
		t.Errorf("after a 13 MiB group with 100 MiB to spare: %d reads, want the next group to read", n)
	}
	free.Store(110 << 20)
	s.freeSeen = freeReading{} // another writer took 154 MiB
	if n := appends(20, 10); n != 20 {
		t.Errorf("near the reserve: %d reads for 20 groups, want 20", n)
	}
	free.Store(50 << 20)
	if _, err := s.Append(context.Background(), body("test.emit", "b", nil)); !errors.Is(err, ErrResourceExhausted) {
		t.Fatalf("append below the reserve: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{&reserveError{dir: "d"}, ErrResourceExhausted},
		{fmt.Errorf("x: %w", invalidf("bad %d", 1)), ErrInvalid},
		{discontinuousf("gap"), ErrNotContinuous},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%v does not match %v", c.err, c.want)
		}
	}
	if errors.Is(invalidf("x"), ErrNotContinuous) {
		t.Error("an invalid-input error matches ErrNotContinuous")
	}
}
