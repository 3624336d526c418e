package journal

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// signedOptions signs with key every `every` events, idle heads after a
// long time (tests that want the idle signature set Idle themselves).
func signedOptions(fs vfs.FS, key ed25519.PrivateKey, every int64) Options {
	opts := testOptions(fs)
	opts.Signing = Signing{Key: key, Every: every, Idle: time.Hour}
	return opts
}

// waitSigned waits until the stream's newest signature is of seq (the
// signer signs the head it finds when it wakes: callers wait before they
// append more).
func waitSigned(t *testing.T, s *Stream, seq int64) []Signature {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sigs, err := s.Signatures(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(sigs) > 0 && sigs[len(sigs)-1].Seq == seq {
			return sigs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signature of seq %d; have %+v", seq, sigs)
		}
		time.Sleep(5 * time.Millisecond) // the signer's own tick is what is awaited
	}
}

// TestSignHeadsEveryNAndOnClose: the committer's heads are signed once
// Every events went unsigned and on a clean stop, beside the chain: the
// seqs and hashes are those of an unsigned journal, and Verify checks and
// names the key.
func TestSignHeadsEveryNAndOnClose(t *testing.T) {
	fs := vfs.NewMem()
	key := newKey(t)
	j := mustOpen(t, signedOptions(fs, key, 10))
	s := j.Stream(Audit)
	for i := range 25 {
		mustAppend(t, s, body("test.note", "", map[string]any{"i": int64(i)}))
		if (i+1)%10 == 0 {
			waitSigned(t, s, int64(i+1))
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// The same appends unsigned give the same chain.
	plain := mustOpen(t, testOptions(vfs.NewMem()))
	defer plain.Close()
	for i := range 25 {
		mustAppend(t, plain.Stream(Audit), body("test.note", "", map[string]any{"i": int64(i)}))
	}

	j = mustOpen(t, testOptions(fs)) // no key: reading and verifying need none
	defer j.Close()
	s = j.Stream(Audit)
	rep, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(key.Public().(ed25519.PublicKey))
	if rep.BadSeq != 0 || rep.SignedSeq != 25 || rep.SignedBy != fp || rep.Signatures != 3 {
		t.Fatalf("verify: %+v; want signed through 25 by %s, at 10, 20 and 25", rep, fp)
	}
	sigs, err := s.Signatures(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range sigs {
		if sig.Seq%10 != 0 && sig.Seq != 25 {
			t.Errorf("a signature of seq %d: want them every 10 and at the end", sig.Seq)
		}
	}
	got := collect(t, s.Scan(Query{}))
	want := collect(t, plain.Stream(Audit).Scan(Query{}))
	if len(got) != 25 || len(want) != 25 {
		t.Fatalf("%d and %d events", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].ComputeHash() != got[i].Hash() {
			t.Fatalf("seq %d changed by signing", got[i].Seq)
		}
	}
}

// TestSignIdleHead: a stream that goes quiet has its head signed soon,
// and an idle head's signature gives way to the next one within a span of
// Every seqs, so a quiet daemon does not keep one per event.
func TestSignIdleHead(t *testing.T) {
	opts := testOptions(vfs.NewMem())
	opts.Signing = Signing{Key: newKey(t), Every: 100, Idle: 20 * time.Millisecond}
	j := mustOpen(t, opts)
	defer j.Close()
	s := j.Stream(Audit)
	mustAppend(t, s, body("test.note", "", nil), body("test.note", "", nil))
	waitSigned(t, s, 2)
	mustAppend(t, s, body("test.note", "", nil))
	sigs := waitSigned(t, s, 3)
	if len(sigs) != 1 {
		t.Fatalf("signatures %+v: the idle head 2's should have been replaced by 3's", sigs)
	}
}

// TestVerifyRefusesBadSignatures: a signature altered in the store, one
// made by another key than the one it names, and one of another hash are
// each the first bad seq, named.
func TestVerifyRefusesBadSignatures(t *testing.T) {
	key, other := newKey(t), newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	for name, tamper := range map[string]func(sig *Signature){
		"flipped bit": func(sig *Signature) { sig.Sig[7] ^= 1 },
		"wrong key": func(sig *Signature) {
			forged := SignHead(other, Audit, sig.Seq, sig.Hash, sig.Time)
			sig.Sig = forged.Sig // other's signature, claiming key's name
		},
		"other hash": func(sig *Signature) { sig.Hash[0] ^= 1; *sig = SignHead(key, Audit, sig.Seq, sig.Hash, sig.Time) },
		"later time": func(sig *Signature) { sig.Time++ },
	} {
		t.Run(name, func(t *testing.T) {
			fs := vfs.NewMem()
			j := mustOpen(t, signedOptions(fs, key, 5))
			s := j.Stream(Audit)
			for i := range 7 {
				mustAppend(t, s, body("test.note", "", nil))
				if i == 4 {
					waitSigned(t, s, 5)
				}
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j = mustOpen(t, testOptions(fs))
			defer j.Close()
			s = j.Stream(Audit)
			sigs, err := s.Signatures(5, 5)
			if err != nil || len(sigs) != 1 {
				t.Fatalf("signatures of seq 5: %+v, %v", sigs, err)
			}
			sig := sigs[0]
			tamper(&sig)
			if !sig.Key.Equal(pub) {
				t.Fatal("the tampered signature must still name the node's key")
			}
			v, _ := sig.AppendBinary(nil)
			if err := s.db.Set(sigKey(5, pub), v, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.BadSeq != 5 || !strings.Contains(rep.Problem, Fingerprint(pub)) || rep.SignedSeq != 0 {
				t.Fatalf("verify after tampering: %+v; want bad seq 5 naming the key", rep)
			}
		})
	}
}

// TestImportKeepsSignaturesAndRecords: signatures imported with the
// events are stored (Verify then names the other node's key), a signature
// of another hash refuses the import, Accept refuses after the continuity
// check, and After follows the imported events in the same commit.
func TestImportKeepsSignaturesAndRecords(t *testing.T) {
	src, _ := sourceJournal(t, 10)
	other := newKey(t)
	last := src[len(src)-1]
	good := SignHead(other, Audit, last.Seq, last.Hash(), 1)
	bad := SignHead(other, Audit, last.Seq, src[0].Hash(), 1)
	j, s := importTarget(t)
	defer j.Close()
	ctx := context.Background()

	if _, err := s.ImportWith(ctx, src, ImportOptions{Signatures: []Signature{bad}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "signs hash") {
		t.Fatalf("import with a signature of another hash: %v", err)
	}
	refused := errors.New("not trusted")
	if _, err := s.ImportWith(ctx, src, ImportOptions{Accept: func() error { return refused }}); !errors.Is(err, refused) {
		t.Fatalf("Accept's refusal: %v", err)
	}
	if s.DurableSeq() != 0 {
		t.Fatalf("refused imports wrote seq %d", s.DurableSeq())
	}
	if _, err := s.Import(ctx, src[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportWith(ctx, src[4:], ImportOptions{Accept: func() error { return refused }}); !errors.Is(err, ErrNotContinuous) {
		t.Fatalf("a discontinuous import must be refused for that first: %v", err)
	}
	rest := src[3:]
	c, err := s.ImportWith(ctx, rest, ImportOptions{Signatures: []Signature{good}, After: body("journal.import", "", map[string]any{"n": int64(len(rest))})})
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != len(rest)+1 || c[len(rest)].Seq != last.Seq+1 {
		t.Fatalf("committed %d, want the %d events and the record after them", len(c), len(rest))
	}
	after := collect(t, s.Scan(Query{From: last.Seq + 1}))
	if k, _ := after[0].Kind(); len(after) != 1 || k != "journal.import" || after[0].Prev() != last.Hash() {
		t.Fatalf("after the import: %s", seqs(after))
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BadSeq != 0 || rep.SignedSeq != last.Seq || rep.SignedBy != good.Signer() {
		t.Fatalf("verify: %+v; want signed through %d by %s", rep, last.Seq, good.Signer())
	}
}

// TestLoadNodeKey: made once with mode 0600 beside a public key another
// node can trust, then read back the same.
func TestLoadNodeKey(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, NodeKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node.key: %v, %v; want mode 0600", fi, err)
	}
	again, err := LoadNodeKey(dir)
	if err != nil || !again.Equal(key) {
		t.Fatalf("second load: %v", err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, NodePubFile))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParsePublicKeys(pubPEM)
	if err != nil || len(keys) != 1 || !keys[0].Equal(key.Public()) {
		t.Fatalf("node.pub: %v, %v", keys, err)
	}
	priv, _ := os.ReadFile(filepath.Join(dir, NodeKeyFile))
	if _, err := ParsePublicKeys(priv); err == nil || !strings.Contains(err.Error(), "node.pub") {
		t.Fatalf("a private key given as a public one: %v", err)
	}
}
