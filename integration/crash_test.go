package integration

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/client"
)

// TestCrashUnderLoad SIGKILLs the daemon at a random moment while 50
// clients emit, restarts it, and requires every acknowledged event exactly
// once at its acknowledged seq, gapless audit seqs and a passing verify.
func TestCrashUnderLoad(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)

	const clients = 50
	var (
		mu      sync.Mutex
		acked   = map[string]int64{} // subject -> acknowledged seq
		firstOK = make(chan struct{})
		once    sync.Once
	)
	conns := make([]*client.Client, clients)
	for i := range conns {
		conns[i] = dial(t, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	loadDone := make(chan struct{})
	defer func() {
		cancel()
		<-loadDone // no client may report after the test has ended
	}()
	go func() {
		defer close(loadDone)
		collect(clients, func(i int) {
			for n := 0; ; n++ {
				subject := fmt.Sprintf("c%d-%d", i, n)
				res, err := conns[i].Do(ctx, fmt.Sprintf("emit load.put %s i=%d n=%d", subject, i, n))
				if err != nil {
					var ue *client.UnreachableError
					if !errors.As(err, &ue) {
						t.Errorf("client %d: emit %s: %v (want success or, after the kill, an unreachable daemon)", i, subject, err)
					}
					return
				}
				var row emitRow
				if len(res.Rows) != 1 || json.Unmarshal(res.Rows[0], &row) != nil || row.Seq <= 0 {
					t.Errorf("client %d: emit %s answered %s", i, subject, res.Rows)
					return
				}
				mu.Lock()
				acked[subject] = row.Seq
				mu.Unlock()
				once.Do(func() { close(firstOK) })
			}
		})
	}()

	select {
	case <-firstOK:
	case <-loadDone:
		t.Fatal("every client stopped before any emit was acknowledged")
	case <-ctx.Done():
		t.Fatal("no emit acknowledged within the deadline")
	}
	time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond) // a random moment, not a timing assertion
	d.Kill()
	select {
	case <-loadDone:
	case <-ctx.Done():
		t.Fatal("clients still blocked after the daemon was killed")
	}
	mu.Lock()
	t.Logf("%d emits acknowledged before SIGKILL", len(acked))
	mu.Unlock()

	d.Restart()
	c := dial(t, d)

	seen := map[string]int64{}
	for _, ev := range events(t, c, "events kind=load.put") {
		if prev, dup := seen[ev.Subject]; dup {
			t.Errorf("subject %s stored twice, at seqs %d and %d", ev.Subject, prev, ev.Seq)
		}
		seen[ev.Subject] = ev.Seq
		want := strings.TrimPrefix(ev.Subject, "c")
		got := fmt.Sprintf("%v-%v", ev.Data["i"], ev.Data["n"])
		if got != want {
			t.Errorf("event %s (seq %d) has data i=%v n=%v", ev.Subject, ev.Seq, ev.Data["i"], ev.Data["n"])
		}
	}
	lost := 0
	for subject, seq := range acked {
		got, ok := seen[subject]
		switch {
		case !ok:
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged emit %s (seq %d) is missing after the restart", subject, seq)
			}
		case got != seq:
			t.Errorf("acknowledged emit %s was seq %d, stored at seq %d", subject, seq, got)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged emits lost", lost, len(acked))
	}

	all := events(t, c, "events")
	requireGapless(t, all, 1)
	if all[0].Kind != "daemon.start" || all[len(all)-1].Kind != "daemon.start" {
		t.Errorf("audit runs from %s to %s, want daemon.start at both ends", all[0].Kind, all[len(all)-1].Kind)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Prev != all[i-1].Hash {
			t.Fatalf("seq %d: prev %s is not the hash %s of seq %d", all[i].Seq, all[i].Prev, all[i-1].Hash, all[i-1].Seq)
		}
	}
	if out, errOut, code := cli(t, d, "journal", "verify"); code != 0 {
		t.Errorf("journal verify after the crash: exit %d\n%s%s", code, out, errOut)
	}
	d.Stop()
}

// TestVerifyDetectsFlippedByte flips one byte in the stored body of seq 10
// and requires journal verify to fail naming seq 10.
func TestVerifyDetectsFlippedByte(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := dial(t, d)
	for i := range 20 {
		emit(t, c, fmt.Sprintf("emit app.tick tick/%d i=%d", i, i))
	}
	if out, errOut, code := cli(t, d, "journal", "verify"); code != 0 {
		t.Fatalf("journal verify before tampering: exit %d\n%s%s", code, out, errOut)
	}
	c.Close()
	d.Stop()

	flipBodyByte(t, filepath.Join(d.Data, "audit"), 10)

	d.Restart()
	out, errOut, code := cli(t, d, "-o", "json", "journal", "verify")
	if code != 1 {
		t.Errorf("journal verify after a flipped byte: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out+errOut, "seq 10") {
		t.Errorf("journal verify does not name seq 10:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	type verifyRow struct {
		Stream string `json:"stream"`
		OK     bool   `json:"ok"`
		BadSeq int64  `json:"bad_seq"`
	}
	found := false
	for _, row := range parseNDJSON[verifyRow](t, out) {
		if row.Stream == "audit" {
			found = true
			if row.OK || row.BadSeq != 10 {
				t.Errorf("audit verify row %+v, want ok=false bad_seq=10", row)
			}
		}
	}
	if !found {
		t.Errorf("journal verify printed no audit row:\n%s", out)
	}
}

// flipBodyByte opens a stopped daemon's stream with pebble and flips one
// byte in the middle of the body of the record of seq.
func flipBodyByte(t *testing.T, dir string, seq int64) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatalf("open %s with pebble: %v", dir, err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	key := binary.BigEndian.AppendUint64([]byte("e/"), uint64(seq))
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("get seq %d: %v", seq, err)
	}
	rec := append([]byte(nil), v...)
	closer.Close()
	// A record is version (1) ‖ time (8) ‖ prev (32) ‖ hash (32) ‖ body.
	const header = 1 + 8 + 32 + 32
	if len(rec) <= header {
		t.Fatalf("record of seq %d is %d bytes, no body", seq, len(rec))
	}
	rec[header+(len(rec)-header)/2] ^= 0x01
	if err := db.Set(key, rec, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// quietPebble keeps pebble's informational logging out of the test output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any) {}
func (quietPebble) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
