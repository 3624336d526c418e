package archive

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeSigned writes evs with a signature of every head whose index
// sign(i) asks for, made by sig(raw).
func writeSigned(t *testing.T, evs []*journal.Raw, signs func(i int) bool, sig func(r *journal.Raw) journal.Signature) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Node: "n", Stream: journal.Audit})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range evs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if signs(i) {
			if err := w.Sign(sig(r)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSignedHeadsRoundTrip: signature frames follow the events they sign,
// each is verified as it is read, and the Reader says who signed how far.
func TestSignedHeadsRoundTrip(t *testing.T) {
	key := testKey(t)
	evs := makeChain(t, 0, journal.Hash{}, 100)
	file := writeSigned(t, evs, func(i int) bool { return i%30 == 29 }, func(r *journal.Raw) journal.Signature {
		return journal.SignHead(key, journal.Audit, r.Seq, r.Hash(), 1)
	})
	for _, o := range []Options{{}, {SkipHashes: true}, {Salvage: true}} {
		r, err := NewReader(bytes.NewReader(file), o)
		if err != nil {
			t.Fatal(err)
		}
		var got []*journal.Raw
		var with []int64
		for {
			raw, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%+v: %v", o, err)
			}
			got = append(got, raw.Clone())
			for _, s := range r.EventSignatures() {
				with = append(with, s.Seq)
			}
		}
		samePrefix(t, got, evs)
		if len(got) != 100 {
			t.Fatalf("read %d events", len(got))
		}
		seq, fp := r.SignedThrough()
		if seq != 90 || fp != journal.Fingerprint(key.Public().(ed25519.PublicKey)) || len(r.Signatures()) != 3 || len(with) != 3 || with[2] != 90 {
			t.Fatalf("%+v: signed through %d by %s; signatures with %v", o, seq, fp, with)
		}
	}
}

// TestBadSignatureIsDamage: a signature that does not verify (another
// key's, under the node's name; or a bit flipped in it and the file's
// checksums recomputed, as an attacker would) is an error naming the seq,
// and salvage stops before the event it signs.
func TestBadSignatureIsDamage(t *testing.T) {
	key, other := testKey(t), testKey(t)
	evs := makeChain(t, 0, journal.Hash{}, 20)
	forged := writeSigned(t, evs, func(i int) bool { return i == 9 }, func(r *journal.Raw) journal.Signature {
		sig := journal.SignHead(other, journal.Audit, r.Seq, r.Hash(), 1)
		sig.Key = key.Public().(ed25519.PublicKey) // claims to be key's
		return sig
	})
	good := writeSigned(t, evs, func(i int) bool { return i == 9 }, func(r *journal.Raw) journal.Signature {
		return journal.SignHead(key, journal.Audit, r.Seq, r.Hash(), 1)
	})
	plain := plaintext(t, good)
	at := bytes.IndexByte(plain[frameStarts(t, plain)[11]:], frameSig) + frameStarts(t, plain)[11]
	if plain[at] != frameSig {
		t.Fatal("no signature frame after seq 10")
	}
	flipped := bytes.Clone(plain)
	flipped[at+2+journal.SignatureLen-1] ^= 1 // the last byte of the signature
	for name, file := range map[string][]byte{"another key": forged, "flipped bit": recompress(t, flipped)} {
		_, n, err := Verify(bytes.NewReader(file))
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Seq != 10 || !strings.Contains(err.Error(), "does not verify") || n != 9 {
			t.Fatalf("%s: %d events, %v; want damage at seq 10 with 9 good events", name, n, err)
		}
		_, got, err := readAll(file, Options{Salvage: true})
		if len(got) != 9 || err == nil {
			t.Fatalf("%s: salvage gave %d events, %v", name, len(got), err)
		}
	}
	if _, n, err := Verify(bytes.NewReader(good)); err != nil || n != 20 {
		t.Fatalf("the good file: %d, %v", n, err)
	}
}

// TestWriterRefusesMisplacedSignature: a signature follows the event it
// signs, with that event's hash.
func TestWriterRefusesMisplacedSignature(t *testing.T) {
	key := testKey(t)
	evs := makeChain(t, 0, journal.Hash{}, 3)
	w, err := NewWriter(io.Discard, Header{Node: "n", Stream: journal.Audit})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Sign(journal.SignHead(key, journal.Audit, 1, evs[0].Hash(), 1)); err == nil {
		t.Fatal("a signature before any event was accepted")
	}
	w.Write(evs[0])
	w.Write(evs[1])
	if err := w.Sign(journal.SignHead(key, journal.Audit, 1, evs[0].Hash(), 1)); err == nil {
		t.Fatal("a signature of seq 1 after seq 2 was accepted")
	}
	if err := w.Sign(journal.SignHead(key, journal.Audit, 2, evs[0].Hash(), 1)); err == nil {
		t.Fatal("a signature of another hash was accepted")
	}
}

// TestVersion1HasNoSignatures: a version-1 file still reads, and a
// signature frame in one is damage.
func TestVersion1HasNoSignatures(t *testing.T) {
	key := testKey(t)
	evs := makeChain(t, 0, journal.Hash{}, 5)
	file := writeSigned(t, evs, func(i int) bool { return i == 4 }, func(r *journal.Raw) journal.Signature {
		return journal.SignHead(key, journal.Audit, r.Seq, r.Hash(), 1)
	})
	v1 := func(plain []byte) []byte {
		f := recompress(t, plain)
		f[len(Magic)] = 1
		return withTrailer(f[:len(f)-trailerLen])
	}
	plain := plaintext(t, file)
	starts := frameStarts(t, plain)
	// header, 5 events, the signature, the footer: drop the signature.
	if len(starts) != 8 || plain[starts[6]] != frameSig {
		t.Fatalf("frames at %v", starts)
	}
	unsigned := append(bytes.Clone(plain[:starts[6]]), plain[starts[7]:]...)
	if h, n, err := Verify(bytes.NewReader(v1(unsigned))); err != nil || n != 5 || h.Version != 1 {
		t.Fatalf("a version-1 file: %+v, %d, %v", h, n, err)
	}
	if _, _, err := Verify(bytes.NewReader(v1(plain))); !isCorrupt(err) || !strings.Contains(err.Error(), "version-1") {
		t.Fatalf("a signature in a version-1 file: %v", err)
	}
}

// TestRotatingCutAndSign: parts cut after a signed head end with it.
func TestRotatingCutAndSign(t *testing.T) {
	key := testKey(t)
	evs := makeChain(t, 0, journal.Hash{}, 10)
	var m memFiles
	w := NewRotating(m.create, Header{Node: "n", Stream: journal.Audit}, 0, 0)
	for i, r := range evs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if i == 3 || i == 9 {
			if err := w.Sign(journal.SignHead(key, journal.Audit, r.Seq, r.Hash(), 1)); err != nil {
				t.Fatal(err)
			}
			if err := w.Cut(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(m.files) != 2 {
		t.Fatalf("%d parts, want 2", len(m.files))
	}
	for i, want := range []int64{4, 10} {
		r, err := NewReader(bytes.NewReader(m.files[i].Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if seq, _ := r.SignedThrough(); seq != want || r.Header().FirstSeq+r.Count()-1 != want {
			t.Fatalf("part %d: signed through %d, ends at %d; want both %d", i, seq, r.Header().FirstSeq+r.Count()-1, want)
		}
	}
}
