package archive

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the FuzzReader seed corpus in testdata/fuzz/FuzzReader")

// fuzzSeeds are the committed seed corpus: name → file, and whether it
// must read cleanly.
func fuzzSeeds(t testing.TB) map[string]struct {
	data []byte
	ok   bool
} {
	evs := makeChain(t, 4, journal.Hash{0x11}, 3)
	h := Header{Node: "seed", Stream: journal.Audit, Created: testCreated}
	valid := writeFile(t, h, evs)
	plain := plaintext(t, valid)
	starts := frameStarts(t, plain)
	tampered := bytes.Clone(plain)
	tampered[starts[2]+20] ^= 1
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 4
	return map[string]struct {
		data []byte
		ok   bool
	}{
		"valid":     {valid, true},
		"empty":     {writeFile(t, Header{Node: "seed", Stream: journal.Capture, FirstSeq: 1, Created: testCreated}, nil), true},
		"truncated": {valid[:len(valid)*2/3], false},
		"tampered":  {recompress(t, tampered), false},
		"flipped":   {flipped, false},
		"noevents":  {recompress(t, plain[:starts[1]]), false},
	}
}

// TestFuzzSeeds keeps the committed corpus in step with the format: the
// valid seeds are golden files of format version 1 and must still read.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	seeds := fuzzSeeds(t)
	if *updateSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.data)))
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, s := range seeds {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestFuzzSeeds -update-seeds)", err)
		}
		quoted, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
		quoted, ok2 := strings.CutSuffix(quoted, ")\n")
		if !ok || !ok2 {
			t.Fatalf("%s: not a fuzz corpus file", name)
		}
		data, err := strconv.Unquote(quoted)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _, err = readAll([]byte(data), Options{})
		if (err == nil) != s.ok {
			t.Errorf("committed seed %s: err = %v, want ok = %v", name, err, s.ok)
		}
	}
}

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic,
// every failure must be a *CorruptError (or ErrVersion), and whatever reads
// cleanly must be a verifiable chain.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, evs, err := readAll(data, Options{})
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) && !errors.Is(err, ErrVersion) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		prev := h.Anchor
		for i, e := range evs {
			if e.Seq != h.FirstSeq+int64(i) || e.Prev() != prev || e.ComputeHash() != e.Hash() {
				t.Fatalf("event %d (seq %d) returned but not valid", i, e.Seq)
			}
			prev = e.Hash()
		}
		_, fast, ferr := readAll(data, Options{SkipHashes: true})
		if err == nil && (ferr != nil || len(fast) != len(evs)) {
			t.Fatalf("verified file: SkipHashes read %d events, %v", len(fast), ferr)
		}
		if err != nil && ferr == nil && !strings.Contains(err.Error(), "does not match the event's contents") {
			t.Fatalf("SkipHashes accepted what verification refused: %v", err)
		}
	})
}
