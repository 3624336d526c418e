// Package randomprovider is hashicorp/random under Terraform's schemas:
// random_id, random_string, random_password, random_integer,
// random_uuid, random_pet and random_shuffle, each with keepers.
//
// Their objects live in state only. What is secret (random_password's
// result) is never journaled: its id is a random nonce, and the result
// is derived again on every read from the nonce, the arguments and the
// daemon's host key, so state and events hold a digest only.
package randomprovider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func init() { provider.Register(New()) }

// Provider is the random provider.
type Provider struct{}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Sourced  = (*Provider)(nil)
)

// New returns the random provider.
func New() *Provider { return &Provider{} }

// Name returns "random".
func (*Provider) Name() string { return "random" }

// Source is the Terraform provider it stands for.
func (*Provider) Source() string { return "hashicorp/random" }

// Resources returns the random resource types.
func (*Provider) Resources() map[string]provider.Resource {
	return map[string]provider.Resource{
		"random_id":       idResource{},
		"random_string":   stringResource{},
		"random_password": stringResource{password: true},
		"random_integer":  integerResource{},
		"random_uuid":     uuidResource{},
		"random_pet":      petResource{},
		"random_shuffle":  shuffleResource{},
	}
}

// DataSources returns none: hashicorp/random has none.
func (*Provider) DataSources() map[string]provider.DataSource { return nil }

// Open returns a session holding the host key.
func (*Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	return &session{key: env.HostKey}, nil
}

type session struct{ key []byte }

func (*session) Close() error { return nil }

func keyOf(s provider.Session) ([]byte, error) {
	ss, ok := s.(*session)
	if !ok || len(ss.key) == 0 {
		return nil, errors.New("random provider: no host key in this session")
	}
	return ss.key, nil
}

// keepers is the keepers attribute every type has: any change of it
// makes a new value.
var keepers = &provider.Attribute{Type: provider.StringMap, Optional: true, ForceNew: true,
	Description: "Arbitrary map of values that, when changed, will trigger recreation of resource."}

// stateOnly is what every random type shares: objects in state only,
// nothing to update in place (every argument forces a new value).
type stateOnly struct{}

func (stateOnly) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	return prior, true, nil
}

func (stateOnly) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	return nil, false, errors.New("random values live in state only")
}

func (stateOnly) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	out := prior.Clone()
	for k, v := range planned {
		out[k] = v
	}
	return out, nil
}

func (stateOnly) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	return nil
}

// ID is known only once a value is made.
func (stateOnly) ID(v provider.Values) (string, error) { return "", nil }

// nonce is a fresh random id.
func nonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// stream is a deterministic byte stream: HMAC-SHA256 of the key over a
// seed and a counter. random_password draws from it, so the same nonce,
// arguments and host key make the same password again.
type stream struct {
	key, seed []byte
	n         uint64
	buf       []byte
}

func newStream(key []byte, parts ...string) *stream {
	return &stream{key: key, seed: []byte(strings.Join(parts, "\x00"))}
}

func (s *stream) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) {
		m := hmac.New(sha256.New, s.key)
		m.Write(s.seed)
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], s.n)
		s.n++
		m.Write(c[:])
		s.buf = append(s.buf, m.Sum(nil)...)
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// intn answers a uniform integer in [0, n) from r.
func intn(r io.Reader, n int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("empty range")
	}
	limit := ^uint64(0) - ^uint64(0)%uint64(n)
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		v := binary.BigEndian.Uint64(b[:])
		if v < limit {
			return int(v % uint64(n)), nil
		}
	}
}

// canonical renders values deterministically, for a derivation seed.
func canonical(v provider.Values, names ...string) string {
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		if v[n] != nil {
			fmt.Fprintf(&b, "%s=%v;", n, v[n])
		}
	}
	return b.String()
}

// knownInt reads a number argument that may be unknown yet.
func knownInt(v provider.Values, known map[string]bool, name string) (int64, bool) {
	if !v.Has(name) {
		return 0, false
	}
	return v.Int(name), true
}
