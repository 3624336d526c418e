// Package journal keeps cairn's append-only event streams: the durable,
// hash-chained record of every change a daemon makes or observes.
package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// The streams a journal holds. Each has its own seq, hash chain and pebble
// instance, so a capture flood never slows an audit fsync.
const (
	Audit   = "audit"
	Capture = "capture"
)

// Streams lists the built-in streams in a stable order. A journal may hold
// more (Options.Streams): Journal.Names lists them all.
var Streams = []string{Audit, Capture}

// Actor says who caused an event. Via is "socket", "etcd", "http", "nats"
// or "system"; Addr is set for network callers, whose UID is -1 when the
// kernel cannot vouch for it.
type Actor struct {
	UID  int    `json:"uid" cbor:"uid"`
	GID  int    `json:"gid" cbor:"gid"`
	PID  int    `json:"pid" cbor:"pid"`
	User string `json:"user,omitempty" cbor:"user,omitempty"`
	Comm string `json:"comm,omitempty" cbor:"comm,omitempty"`
	Via  string `json:"via" cbor:"via"`
	Addr string `json:"addr,omitempty" cbor:"addr,omitempty"`
	// Principal is who the caller authenticated as beyond the OS user,
	// such as "etcd:alice" for an etcd user.
	Principal string `json:"principal,omitempty" cbor:"principal,omitempty"`
	// Groups are the caller's supplementary groups, carried so that work
	// done for the caller (internal/ascaller) has them; never recorded.
	Groups []int `json:"-" cbor:"-"`
}

// SystemActor is the actor of what cairn does on its own (starting,
// stopping, expiring a lease, pruning, observing the host, checking for
// drift): the daemon's own uid, gid, pid and user, comm "cairn", via
// "system". The one spelling of it.
func SystemActor() Actor {
	return systemActor()
}

var systemActor = sync.OnceValue(func() Actor {
	uid := os.Getuid()
	name := ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	return Actor{UID: uid, GID: os.Getgid(), PID: os.Getpid(), User: name, Comm: "cairn", Via: "system"}
})

// Evt is sysdig's evt object: the system event itself.
type Evt struct {
	Type    string `json:"type,omitempty" cbor:"type,omitempty"`
	Num     int64  `json:"num,omitempty" cbor:"num,omitempty"`
	Time    int64  `json:"time,omitempty" cbor:"time,omitempty"` // ns since the epoch
	Res     int64  `json:"res,omitempty" cbor:"res,omitempty"`
	Latency int64  `json:"latency,omitempty" cbor:"latency,omitempty"` // ns
}

// Proc is sysdig's proc object: the process an event is about.
type Proc struct {
	Name    string `json:"name,omitempty" cbor:"name,omitempty"`
	PID     int64  `json:"pid,omitempty" cbor:"pid,omitempty"`
	PPID    int64  `json:"ppid,omitempty" cbor:"ppid,omitempty"`
	Cmdline string `json:"cmdline,omitempty" cbor:"cmdline,omitempty"`
	Exe     string `json:"exe,omitempty" cbor:"exe,omitempty"`
	Cwd     string `json:"cwd,omitempty" cbor:"cwd,omitempty"`
	// TID is the thread the event happened on (sysdig's thread.tid), when
	// it is not the process's main thread or the source knows it.
	TID   int64  `json:"tid,omitempty" cbor:"tid,omitempty"`
	PName string `json:"pname,omitempty" cbor:"pname,omitempty"` // the parent's name (sysdig's proc.pname)
	// LoginShellID is the pid of the oldest shell among the process and
	// its ancestors (sysdig's proc.loginshellid), when there is one.
	LoginShellID int64 `json:"loginshellid,omitempty" cbor:"loginshellid,omitempty"`
	// Comm is the kernel's name of the task (/proc/PID/comm, sysdig's
	// proc.comm), where Name is the executable's.
	Comm string `json:"comm,omitempty" cbor:"comm,omitempty"`
	// Ancestors are the process's parent, grandparent, … (at most 16, as
	// sysdig's chisels climb): sysdig's proc.aname[N] and proc.apid[N].
	Ancestors []Ancestor `json:"ancestors,omitempty" cbor:"ancestors,omitempty"`
}

// Ancestor is one process up a process's ancestry.
type Ancestor struct {
	PID  int64  `json:"pid" cbor:"pid"`
	Name string `json:"name" cbor:"name"`
}

// User is sysdig's user object.
type User struct {
	Name string `json:"name,omitempty" cbor:"name,omitempty"`
	UID  int64  `json:"uid" cbor:"uid"`
}

// FD is sysdig's fd object: a file or socket descriptor.
type FD struct {
	Name    string `json:"name,omitempty" cbor:"name,omitempty"`
	Type    string `json:"type,omitempty" cbor:"type,omitempty"`
	SIP     string `json:"sip,omitempty" cbor:"sip,omitempty"`
	SPort   int64  `json:"sport,omitempty" cbor:"sport,omitempty"`
	CIP     string `json:"cip,omitempty" cbor:"cip,omitempty"`
	CPort   int64  `json:"cport,omitempty" cbor:"cport,omitempty"`
	L4Proto string `json:"l4proto,omitempty" cbor:"l4proto,omitempty"`
}

// Container is sysdig's container object; ID is "host" outside containers.
type Container struct {
	ID string `json:"id,omitempty" cbor:"id,omitempty"`
	// Name and Image are set on the records of cairn's own containers (the
	// logs stream): the name given at run and the image reference.
	Name  string `json:"name,omitempty" cbor:"name,omitempty"`
	Image string `json:"image,omitempty" cbor:"image,omitempty"`
}

// Body is the part of an event its author decides: everything but the
// stream, seq, time and chain. Its deterministic CBOR encoding is what the
// journal stores and hashes.
type Body struct {
	Kind      string         `json:"kind" cbor:"kind"`
	Subject   string         `json:"subject" cbor:"subject"`
	Node      string         `json:"node" cbor:"node"`
	Actor     Actor          `json:"actor" cbor:"actor"`
	Data      map[string]any `json:"data,omitempty" cbor:"data,omitempty"`
	Evt       *Evt           `json:"evt,omitempty" cbor:"evt,omitempty"`
	Proc      *Proc          `json:"proc,omitempty" cbor:"proc,omitempty"`
	User      *User          `json:"user,omitempty" cbor:"user,omitempty"`
	FD        *FD            `json:"fd,omitempty" cbor:"fd,omitempty"`
	Container *Container     `json:"container,omitempty" cbor:"container,omitempty"`
}

// Hash is a SHA-256 link of a stream's chain.
type Hash [sha256.Size]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as hex (a JSON string).
func (h Hash) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalText decodes hex.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("hash %q: want %d hex bytes", b, len(h))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("hash %q: %w", b, err)
	}
	return nil
}

// Event is one entry of a stream, decoded.
type Event struct {
	Stream string
	Seq    int64
	Time   int64 // ns since the epoch, commit time
	Body
	Prev Hash
	Hash Hash
}

// eventJSON is Event's JSON shape: the names of DESIGN.md, time in RFC 3339
// with nanoseconds.
type eventJSON struct {
	Stream string `json:"stream"`
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
	Body
	Prev Hash `json:"prev"`
	Hash Hash `json:"hash"`
}

// EncodeJSON encodes v as JSON without escaping <, > and & (which would
// make a value of HTML six times longer on the wire), and without a newline.
func EncodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalJSON encodes the event as `-o json` prints it and NATS carries it.
func (e *Event) MarshalJSON() ([]byte, error) {
	return appendEventJSON(nil, e)
}

// UnmarshalJSON decodes the JSON that MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("event time: %w", err)
	}
	*e = Event{Stream: j.Stream, Seq: j.Seq, Time: t.UnixNano(), Body: j.Body, Prev: j.Prev, Hash: j.Hash}
	return nil
}

var (
	bodyEnc   cbor.EncMode
	bodyDec   cbor.DecMode
	fieldsDec cbor.DecMode
)

func init() {
	var err error
	if bodyEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	opts := cbor.DecOptions{
		DefaultMapType:  reflect.TypeOf(map[string]any(nil)),
		IntDec:          cbor.IntDecConvertSignedOrBigInt,
		BigIntDec:       cbor.BigIntDecodePointer,
		MaxNestedLevels: 64,
	}
	if bodyDec, err = opts.DecMode(); err != nil {
		panic(err)
	}
	opts.FieldNameMatching = cbor.FieldNameMatchingCaseSensitive
	opts.DupMapKey = cbor.DupMapKeyEnforcedAPF
	if fieldsDec, err = opts.DecMode(); err != nil {
		panic(err)
	}
}

// EncodeBody returns the deterministic CBOR encoding of b (RFC 8949 core
// deterministic: shortest forms, definite lengths, sorted map keys). It
// refuses an invalid kind.
func EncodeBody(b *Body) ([]byte, error) {
	if err := ValidateKind(b.Kind); err != nil {
		return nil, err
	}
	out, err := bodyEnc.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", b.Kind, err)
	}
	return out, nil
}

// DecodeBody decodes what EncodeBody wrote.
func DecodeBody(p []byte) (Body, error) {
	var b Body
	if err := bodyDec.Unmarshal(p, &b); err != nil {
		return Body{}, fmt.Errorf("decode event body: %w", err)
	}
	return b, nil
}

// DecodeValue decodes one CBOR value of a body (such as its data) the way
// DecodeBody does: maps as map[string]any, integers as int64 (one beyond
// int64, such as a uint64 an engine recorded, as *big.Int, so that an
// event that was committed can always be read).
func DecodeValue(p []byte, v any) error {
	return bodyDec.Unmarshal(p, v)
}

// EncodeValue encodes one value of a body (such as a field of its data)
// as EncodeBody encodes it inside the body: core deterministic CBOR.
func EncodeValue(v any) ([]byte, error) {
	return bodyEnc.Marshal(v)
}

// DecodeFields decodes one CBOR value of a body into a struct that reads
// some of its fields, for an engine's FoldRaw: keys match field names (or
// cbor tags) exactly, as a lookup in the decoded map would, and a map with
// a key twice is an error, where the map decoding keeps one of them. So a
// value DecodeFields reads, it reads as the map decoding does; one it
// refuses, the engine reads through the whole decoded event.
func DecodeFields(p []byte, v any) error {
	return fieldsDec.Unmarshal(p, v)
}

// ValidateKind reports whether kind is dotted lowercase words,
// [a-z0-9_]+(\.[a-z0-9_]+)+, so that it can never break a NATS subject.
func ValidateKind(kind string) error {
	words, n := 0, 0
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			n++
		case c == '.':
			if n == 0 {
				return fmt.Errorf("invalid event kind %q: empty word; kinds are dotted lowercase words such as kv.put", kind)
			}
			words, n = words+1, 0
		default:
			return fmt.Errorf("invalid event kind %q: %q is not allowed; kinds are dotted words of [a-z0-9_] such as kv.put", kind, c)
		}
	}
	if n == 0 || words == 0 {
		return fmt.Errorf("invalid event kind %q: kinds are at least two dotted words of [a-z0-9_], such as kv.put", kind)
	}
	return nil
}

// ChainHash computes an event's link in its stream's chain:
//
//	SHA-256( len(stream) as one byte ‖ stream ‖ seq as 8 bytes big-endian ‖
//	         time (ns) as 8 bytes big-endian ‖ prev (32 bytes) ‖ body )
//
// The first event of a stream has prev = 32 zero bytes.
func ChainHash(stream string, seq, time int64, prev Hash, body []byte) Hash {
	h := sha256.New()
	var hdr [1 + 255 + 16]byte
	n := copy(hdr[1:], stream)
	hdr[0] = byte(n)
	binary.BigEndian.PutUint64(hdr[1+n:], uint64(seq))
	binary.BigEndian.PutUint64(hdr[1+n+8:], uint64(time))
	h.Write(hdr[:1+n+16])
	h.Write(prev[:])
	h.Write(body)
	var out Hash
	h.Sum(out[:0])
	return out
}

// The stored form of an event (a record) is
//
//	version (1 byte) ‖ time (8 bytes BE) ‖ prev (32) ‖ hash (32) ‖ body
//
// under the key of its seq. The body is stored exactly as it was hashed.
const (
	RecordVersion   = 1
	recordHeaderLen = 1 + 8 + 32 + 32
)

// EncodeRecord returns the stored form of one event.
func EncodeRecord(time int64, prev, hash Hash, body []byte) []byte {
	r := make([]byte, recordHeaderLen+len(body))
	r[0] = RecordVersion
	binary.BigEndian.PutUint64(r[1:], uint64(time))
	copy(r[9:], prev[:])
	copy(r[41:], hash[:])
	copy(r[recordHeaderLen:], body)
	return r
}

// Raw is an event as stored, decoded only as far as it is asked to be. The
// envelope (seq, time, hashes) is read without decoding the body.
type Raw struct {
	Stream string
	Seq    int64
	Record []byte // the stored bytes; owned by the Raw

	shared *rawCache // set on a Raw several readers share
	// kind is the body's kind where the committer knew it (a live
	// event), so that Kind need not walk the body to it.
	kind string
}

// CheckRecord reports whether r is a well-formed record of a known version.
func CheckRecord(r []byte) error {
	if len(r) < recordHeaderLen {
		return fmt.Errorf("record of %d bytes is shorter than its %d-byte header", len(r), recordHeaderLen)
	}
	if r[0] != RecordVersion {
		return fmt.Errorf("record version %d is not known to this cairn (knows %d)", r[0], RecordVersion)
	}
	return nil
}

// Time returns the commit time in ns since the epoch.
func (r *Raw) Time() int64 { return int64(binary.BigEndian.Uint64(r.Record[1:9])) }

// Prev returns the previous event's hash.
func (r *Raw) Prev() (h Hash) { copy(h[:], r.Record[9:41]); return h }

// Hash returns this event's stored hash.
func (r *Raw) Hash() (h Hash) { copy(h[:], r.Record[41:73]); return h }

// Body returns the stored CBOR body, aliasing the record.
func (r *Raw) Body() []byte { return r.Record[recordHeaderLen:] }

// ComputeHash recomputes the event's hash from its stored parts.
func (r *Raw) ComputeHash() Hash {
	return ChainHash(r.Stream, r.Seq, r.Time(), r.Prev(), r.Body())
}

// Decode decodes the whole event.
func (r *Raw) Decode() (*Event, error) {
	if err := CheckRecord(r.Record); err != nil {
		return nil, fmt.Errorf("%s seq %d: %w", r.Stream, r.Seq, err)
	}
	b, err := DecodeBody(r.Body())
	if err != nil {
		return nil, fmt.Errorf("%s seq %d: %w", r.Stream, r.Seq, err)
	}
	return &Event{Stream: r.Stream, Seq: r.Seq, Time: r.Time(), Body: b, Prev: r.Prev(), Hash: r.Hash()}, nil
}
