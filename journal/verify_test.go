package journal

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestVerifyDetectsFlippedByte(t *testing.T) {
	for _, where := range []struct {
		name string
		off  func(rec []byte) int
	}{
		{"body", func(rec []byte) int { return len(rec) - 3 }},
		{"time", func(rec []byte) int { return 5 }},
		{"hash", func(rec []byte) int { return 50 }},
		{"prev", func(rec []byte) int { return 20 }},
	} {
		t.Run(where.name, func(t *testing.T) {
			fs := vfs.NewMem()
			j := mustOpen(t, testOptions(fs))
			s := j.Stream(Audit)
			for i := range 100 {
				mustAppend(t, s, body("kv.put", fmt.Sprint("k", i), map[string]any{"value": "some value"}))
			}
			rep, err := s.Verify(context.Background())
			if err != nil || rep != (VerifyReport{First: 1, Last: 100, Events: 100}) {
				t.Fatalf("verify of a good stream: %+v %v", rep, err)
			}
			j.Close()

			db := rawPebble(t, fs, Audit)
			rec, closer, err := db.Get(eventKey(42))
			if err != nil {
				t.Fatal(err)
			}
			rec = append([]byte(nil), rec...)
			closer.Close()
			rec[where.off(rec)] ^= 0x01
			if err := db.Set(eventKey(42), rec, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()

			j = mustOpen(t, testOptions(fs))
			defer j.Close()
			rep, err = j.Stream(Audit).Verify(context.Background())
			if err != nil || rep.BadSeq != 42 {
				t.Fatalf("verify after flipping a %s byte of seq 42: %+v %v", where.name, rep, err)
			}
			t.Log(rep.Problem)
		})
	}
}

func TestVerifyDetectsMissingEvent(t *testing.T) {
	fs := vfs.NewMem()
	j := mustOpen(t, testOptions(fs))
	for i := range 10 {
		mustAppend(t, j.Stream(Audit), body("kv.put", fmt.Sprint(i), nil))
	}
	j.Close()
	db := rawPebble(t, fs, Audit)
	if err := db.Delete(eventKey(5), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	j = mustOpen(t, testOptions(fs))
	defer j.Close()
	rep, err := j.Stream(Audit).Verify(context.Background())
	if err != nil || rep.BadSeq != 5 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestHashVector pins the test vector of docs/events.md.
func TestHashVector(t *testing.T) {
	b := &Body{
		Kind:    "kv.put",
		Subject: "app/db/url",
		Node:    "host1",
		Actor:   Actor{UID: 1000, GID: 1000, PID: 4242, Via: "socket"},
		Data:    map[string]any{"value": "postgres://db:5432/app"},
	}
	p, err := EncodeBody(b)
	if err != nil {
		t.Fatal(err)
	}
	h := ChainHash("audit", 1, 1764000000000000000, Hash{}, p)
	t.Logf("body %x", p)
	t.Logf("hash %s", h)
	if got := hex.EncodeToString(p); got != vectorBody {
		t.Errorf("body\n got %s\nwant %s", got, vectorBody)
	}
	if h.String() != vectorHash {
		t.Errorf("hash\n got %s\nwant %s", h, vectorHash)
	}
	// And the journal produces the same link for the same event.
	opts := testOptions(vfs.NewMem())
	opts.Now = func() time.Time { return time.Unix(0, 1764000000000000000) }
	j := mustOpen(t, opts)
	defer j.Close()
	c := mustAppend(t, j.Stream(Audit), b)
	if c[0].Hash != h {
		t.Fatalf("journal hash %s, want %s", c[0].Hash, h)
	}
}

const (
	vectorBody = "a56464617461a16576616c756576706f7374677265733a2f2f64623a353433322f617070646b696e64666b762e707574646e6f646565686f737431656163746f72a4636769641903e863706964191092637569641903e86376696166736f636b6574677375626a6563746a6170702f64622f75726c"
	vectorHash = "14fc6f3991a5286dd5a112685d3c7a96c11722958e61abff7b07144f58e18236"
)
