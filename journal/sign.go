package journal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The hash chain detects accidents, not an attacker who rewrites every hash
// from an edit on. A signed chain head is a node's statement, with its
// Ed25519 key, that its stream's event seq had hash Hash when it signed:
// since every hash covers the one before it, a signature on a head vouches
// for the whole chain up to it. Signatures live beside the chain (m/sig/
// keys), never in it, so seqs and hashes are exactly those of an unsigned
// journal.

// SignatureLen is the encoded size of a Signature: seq (8) ‖ time (8) ‖
// hash (32) ‖ public key (32) ‖ signature (64).
const SignatureLen = 8 + 8 + 32 + ed25519.PublicKeySize + ed25519.SignatureSize

// Signature is one signed chain head.
type Signature struct {
	// Seq and Hash are the head: the event signed and its chain hash.
	Seq  int64
	Hash Hash
	// Time is when it was signed (ns since the epoch).
	Time int64
	// Key is the signer's public key, Sig the Ed25519 signature of
	// SignedMessage.
	Key ed25519.PublicKey
	Sig []byte
}

// signContext opens every signed message, so a cairn head signature can
// never be mistaken for a signature of anything else made with the key.
const signContext = "cairn chain head v1\x00"

// SignedMessage returns the bytes a head signature covers: a context
// string ‖ len(stream) (1) ‖ stream ‖ seq (8) ‖ time (8) ‖ hash (32).
func SignedMessage(stream string, seq int64, hash Hash, time int64) []byte {
	m := make([]byte, 0, len(signContext)+1+len(stream)+8+8+len(hash))
	m = append(m, signContext...)
	m = append(m, byte(len(stream)))
	m = append(m, stream...)
	m = binary.BigEndian.AppendUint64(m, uint64(seq))
	m = binary.BigEndian.AppendUint64(m, uint64(time))
	return append(m, hash[:]...)
}

// SignHead signs the head (seq, hash) of stream at time t with key.
func SignHead(key ed25519.PrivateKey, stream string, seq int64, hash Hash, t int64) Signature {
	return Signature{
		Seq: seq, Hash: hash, Time: t,
		Key: key.Public().(ed25519.PublicKey),
		Sig: ed25519.Sign(key, SignedMessage(stream, seq, hash, t)),
	}
}

// Check reports whether sig is a valid signature of its head in stream.
func (sig Signature) Check(stream string) error {
	if len(sig.Key) != ed25519.PublicKeySize || len(sig.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature of seq %d is malformed", sig.Seq)
	}
	if !ed25519.Verify(sig.Key, SignedMessage(stream, sig.Seq, sig.Hash, sig.Time), sig.Sig) {
		return fmt.Errorf("signature of seq %d by key %s does not verify: the chain head or the signature was altered", sig.Seq, Fingerprint(sig.Key))
	}
	return nil
}

// Fingerprint names a public key as ssh-keygen -l does: "SHA256:" and the
// unpadded base64 of the SHA-256 of the key's 32 bytes.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Signer returns the fingerprint of the signature's key.
func (sig Signature) Signer() string { return Fingerprint(sig.Key) }

// AppendBinary appends the SignatureLen-byte encoding of sig.
func (sig Signature) AppendBinary(b []byte) ([]byte, error) {
	if len(sig.Key) != ed25519.PublicKeySize || len(sig.Sig) != ed25519.SignatureSize {
		return b, errors.New("malformed signature")
	}
	b = binary.BigEndian.AppendUint64(b, uint64(sig.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(sig.Time))
	b = append(b, sig.Hash[:]...)
	b = append(b, sig.Key...)
	return append(b, sig.Sig...), nil
}

// DecodeSignature reads the encoding AppendBinary writes.
func DecodeSignature(p []byte) (Signature, error) {
	var sig Signature
	if len(p) != SignatureLen {
		return sig, fmt.Errorf("signature of %d bytes, want %d", len(p), SignatureLen)
	}
	sig.Seq = int64(binary.BigEndian.Uint64(p))
	sig.Time = int64(binary.BigEndian.Uint64(p[8:]))
	copy(sig.Hash[:], p[16:48])
	sig.Key = bytes.Clone(p[48 : 48+ed25519.PublicKeySize])
	sig.Sig = bytes.Clone(p[48+ed25519.PublicKeySize:])
	return sig, nil
}

// Signing configures the signing of chain heads (Options.Signing).
type Signing struct {
	// Key is the node's key; nil signs nothing.
	Key ed25519.PrivateKey
	// Every: a head is signed once this many events followed the last
	// signed one (default 4096).
	Every int64
	// Idle: the head of a stream that took no event for this long is
	// signed (default 1s), so a quiet daemon's latest head is signed soon.
	Idle time.Duration
}

// sigKey is m/sig/ + be64(seq) + public key: a head may carry signatures
// of several keys (its own and, imported, another node's).
func sigKey(seq int64, pub ed25519.PublicKey) []byte {
	k := make([]byte, 0, len(prefixSig)+8+len(pub))
	k = append(k, prefixSig...)
	k = binary.BigEndian.AppendUint64(k, uint64(seq))
	return append(k, pub...)
}

func sigSeqKey(seq int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefixSig...), uint64(seq))
}

// putSignatures writes signatures into b.
func putSignatures(b *pebble.Batch, sigs []Signature) error {
	for _, sig := range sigs {
		v, err := sig.AppendBinary(nil)
		if err != nil {
			return err
		}
		if err := b.Set(sigKey(sig.Seq, sig.Key), v, nil); err != nil {
			return err
		}
	}
	return nil
}

// Signatures returns the stored signatures of heads from through to (0:
// no bound), in seq order, as stored: Verify checks them.
func (s *Stream) Signatures(from, to int64) ([]Signature, error) {
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.signatures(from, to)
}

// signatures is Signatures under s.rw, held by the caller.
func (s *Stream) signatures(from, to int64) ([]Signature, error) {
	upper := PrefixEnd(prefixSig)
	if to > 0 {
		upper = sigSeqKey(to + 1)
	}
	// The live database, not a snapshot: a signature is written after
	// the head it signs was published.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: sigSeqKey(max(from, 0)), UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var sigs []Signature
	for ok := it.First(); ok; ok = it.Next() {
		sig, err := DecodeSignature(it.Value())
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("stored signature %x: %w", it.Key(), err)
		}
		sigs = append(sigs, sig)
	}
	return sigs, errors.Join(it.Error(), it.Close())
}

// PublicKey returns the public key the journal signs with, or nil.
func (j *Journal) PublicKey() ed25519.PublicKey {
	if j.opts.Signing.Key == nil {
		return nil
	}
	return j.opts.Signing.Key.Public().(ed25519.PublicKey)
}

// SignHead signs the head seq of the stream with the journal's key as of
// now, without storing it: a node attesting, in a capture file, what its
// journal holds. h must be the hash stored at seq.
func (s *Stream) SignHead(seq int64, h Hash) (Signature, bool) {
	key := s.j.opts.Signing.Key
	if key == nil {
		return Signature{}, false
	}
	return SignHead(key, s.name, seq, h, s.j.opts.Now().UnixNano()), true
}

// signer signs a stream's chain heads off the commit path: the committer
// only records the durable head (note), and kicks the signer when Every
// events went unsigned; the signer's own ticker notices an idle head.
type signer struct {
	s     *Stream
	key   ed25519.PrivateKey
	pub   ed25519.PublicKey
	every int64
	idle  time.Duration

	mu   sync.Mutex
	head tip // the durable head, from the committer

	signedSeq atomic.Int64 // the newest signed head's seq
	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}

	// Owned by the signer goroutine, then by finish. Signatures are kept
	// about every `every` seqs (kept) plus the newest (latest): an idle
	// head's signature is replaced by the next one within the same span,
	// so a quiet daemon does not grow one signature per event.
	kept, latest int64
}

func newSigner(s *Stream, cfg Signing) *signer {
	if cfg.Key == nil {
		return nil
	}
	if cfg.Every <= 0 {
		cfg.Every = 4096
	}
	if cfg.Idle <= 0 {
		cfg.Idle = time.Second
	}
	g := &signer{
		s: s, key: cfg.Key, pub: cfg.Key.Public().(ed25519.PublicKey),
		every: cfg.Every, idle: cfg.Idle, head: s.last,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	// The newest signature of this key: where signing resumes.
	if sigs, err := s.ownSignatures(g.pub); err == nil && len(sigs) > 0 {
		g.latest = sigs[len(sigs)-1]
		g.kept = g.latest
	}
	g.signedSeq.Store(g.latest)
	go g.run()
	return g
}

// ownSignatures lists the seqs key signed, ascending (at startup, from
// the live database).
func (s *Stream) ownSignatures(pub ed25519.PublicKey) ([]int64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixSig, UpperBound: PrefixEnd(prefixSig)})
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) == len(prefixSig)+8+len(pub) && bytes.Equal(k[len(prefixSig)+8:], pub) {
			seqs = append(seqs, int64(binary.BigEndian.Uint64(k[len(prefixSig):])))
		}
	}
	return seqs, errors.Join(it.Error(), it.Close())
}

// note records a durable head; called by the committer after publishing.
// It costs an uncontended lock, and a channel send every Every events.
func (g *signer) note(t tip) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.head = t
	g.mu.Unlock()
	if t.seq-g.signedSeq.Load() >= g.every {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
}

func (g *signer) current() tip {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.head
}

func (g *signer) run() {
	defer close(g.done)
	tick := time.NewTicker(max(g.idle/4, time.Millisecond))
	defer tick.Stop()
	var seen int64
	var changed time.Time
	for {
		select {
		case <-g.stop:
			return
		case <-g.kick:
			if h := g.current(); h.seq-g.latest >= g.every {
				g.sign(h)
			}
		case now := <-tick.C:
			h := g.current()
			if h.seq != seen {
				seen, changed = h.seq, now
				continue
			}
			if h.seq > g.latest && now.Sub(changed) >= g.idle {
				g.sign(h)
			}
		}
	}
}

// sign writes the signature of head h, durably: the log file holds back
// whole blocks until a sync (sizedWALFile), so nothing the journal writes
// is left unsynced.
func (g *signer) sign(h tip) {
	s := g.s
	if h.seq <= 0 {
		return
	}
	sig := SignHead(g.key, s.name, h.seq, h.hash, s.j.opts.Now().UnixNano())
	b := s.db.NewBatch()
	defer b.Close()
	if g.latest > g.kept && h.seq-g.kept < g.every {
		if err := b.Delete(sigKey(g.latest, g.pub), nil); err != nil {
			s.log.Error("sign chain head", "seq", h.seq, "err", err)
			return
		}
	}
	if err := putSignatures(b, []Signature{sig}); err != nil {
		s.log.Error("sign chain head", "seq", h.seq, "err", err)
		return
	}
	if err := applySynced(s.db, b); err != nil {
		s.log.Error("sign chain head", "seq", h.seq, "err", err)
		return
	}
	if h.seq-g.kept >= g.every {
		g.kept = h.seq
	}
	g.latest = h.seq
	g.signedSeq.Store(h.seq)
}

// finish stops the signer and, after a clean stop of the committer, signs
// the final head durably.
func (g *signer) finish() {
	if g == nil {
		return
	}
	close(g.stop)
	<-g.done
	if h := g.current(); g.s.failed == nil && h.seq > g.latest {
		g.sign(h)
	}
}
