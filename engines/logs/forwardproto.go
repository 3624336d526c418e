package logs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Limits of the forward input, which keep the daemon's memory bounded
// whatever a client sends.
const (
	// defaultMaxFrame is the largest forward message (one msgpack array:
	// Message, Forward or PackedForward with its option) read from a
	// connection, 16 MiB; --forward-max-frame changes it. Fluent Bit's
	// out_forward sends chunks of at most a few MiB, Docker's driver one
	// message per line.
	defaultMaxFrame = 16 << 20
	// maxInflated bounds a CompressedPackedForward's entries once
	// gunzipped, 64 MiB: a gzip bomb is refused, not inflated.
	maxInflated = 64 << 20
	// maxDepth bounds the nesting of maps and arrays in a record.
	maxDepth = 64
)

// errFrameTooLarge says a message was larger than the frame limit.
var errFrameTooLarge = errors.New("forward message larger than the frame limit")

// forwardMsg is one decoded forward message: its records, the chunk id to
// ack (empty when the client asked for none), and how many entries were
// not records (not a map, or a bad time).
type forwardMsg struct {
	tag     string
	records []Record
	chunk   string
	mode    string // message, forward, packed, compressed
	bad     int
	keys    keyCache
	bufs    *forwardBufs // nil: fresh buffers
}

// forwardBufs are the buffers of one message: the packed entries and
// their records' CBOR. A connection borrows them from a bufPool for each
// message and gives them back once its records are stored, so an idle
// connection holds none.
type forwardBufs struct {
	packed, out []byte
	records     []Record
	scratch     encodeScratch // the records' events
}

// maxKeptBuf bounds a buffer kept for the next message.
const maxKeptBuf = 16 << 20

// bufPool lends forward messages their buffers, and bounds how many
// messages are read and stored at once: the forward input's memory is at
// most that many messages' (each within --forward-max-frame), however
// many connections are open. A connection whose message finds every slot
// taken waits, unread, as TCP's flow control then makes its client do.
type bufPool struct {
	slots chan struct{}
	pool  sync.Pool
}

// forwardInFlight is how many forward messages are decoded and stored at
// once, across connections.
const forwardInFlight = 32

func newBufPool(n int) *bufPool {
	return &bufPool{slots: make(chan struct{}, n), pool: sync.Pool{New: func() any { return new(forwardBufs) }}}
}

// get takes a slot and buffers, waiting for a slot; it fails only when ctx
// ends.
func (p *bufPool) get(ctx context.Context) (*forwardBufs, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.pool.Get().(*forwardBufs), nil
}

// put gives back what get lent, once nothing refers to the buffers.
func (p *bufPool) put(b *forwardBufs) {
	if cap(b.packed) > maxKeptBuf {
		b.packed = nil
	}
	if cap(b.out) > maxKeptBuf {
		b.out = nil
	}
	if cap(b.scratch.buf) > maxKeptBuf {
		b.scratch.buf = nil
	}
	clear(b.records[:cap(b.records)]) // nothing kept alive through them
	b.records = b.records[:0]
	clear(b.scratch.bodies[:cap(b.scratch.bodies)])
	p.pool.Put(b)
	<-p.slots
}

// drop gives back get's slot but not its buffers, which something may still
// read.
func (p *bufPool) drop() { <-p.slots }

// readBytes reads a bin or str into the packed buffer when it fits, else
// as msgpack reads it (growing as the bytes arrive, never by the length a
// client declares).
func (b *forwardBufs) readBytes(d *msgpack.Decoder) ([]byte, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsBin(c) && !msgpcode.IsString(c) {
		return d.DecodeBytes() // nil, or msgpack's error
	}
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = &forwardBufs{}
	}
	if n <= cap(b.packed) || n <= 64<<10 {
		// What the buffer holds already, or a length too short to
		// matter: read as it is declared.
		if cap(b.packed) < n {
			b.packed = make([]byte, n)
		}
		p := b.packed[:n]
		return p, d.ReadFull(p)
	}
	p, err := readGrowing(d, n)
	if err != nil {
		return nil, err
	}
	if len(p) <= maxKeptBuf {
		b.packed = p[:0]
	}
	return p, nil
}

// keyCache interns a message's map keys: the records of one message
// mostly share them, and a key decoded once is not allocated again.
type keyCache struct {
	m   map[string]string
	buf [64]byte
}

// decode reads a str key through the cache; a key longer than 64 bytes,
// or beyond 1024 distinct ones, is read as it is.
func (kc *keyCache) decode(d *msgpack.Decoder) (string, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return "", err
	}
	if n < 0 {
		return "", nil
	}
	if n > len(kc.buf) {
		b, err := readGrowing(d, n)
		if err != nil {
			return "", err
		}
		return validKey(b), nil
	}
	b := kc.buf[:n]
	if err := d.ReadFull(b); err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return validKey(b), nil
	}
	if k, ok := kc.m[string(b)]; ok {
		return k, nil
	}
	k := string(b)
	if kc.m == nil {
		kc.m = make(map[string]string, 16)
	}
	if len(kc.m) < 1024 {
		kc.m[k] = k
	}
	return k, nil
}

// validKey returns a map key as a string of UTF-8, each invalid byte
// replaced: the journal stores keys as CBOR text, which must be UTF-8 for
// the event to be read again.
func validKey(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\ufffd")
}

// readGrowing reads n bytes, the buffer growing as they arrive rather than
// by the length a client declares (which may be gigabytes sent in a few
// bytes).
func readGrowing(d *msgpack.Decoder, n int) ([]byte, error) {
	p := make([]byte, 0, min(n, 1<<20))
	for len(p) < n {
		k := min(n-len(p), max(cap(p)-len(p), 1<<20))
		p = slices.Grow(p, k)
		if err := d.ReadFull(p[len(p) : len(p)+k]); err != nil {
			return nil, err
		}
		p = p[:len(p)+k]
	}
	return p, nil
}

// limitReader counts the bytes the decoder reads from a connection's
// buffer and fails once a message takes more than max.
type limitReader struct {
	r interface {
		io.Reader
		io.ByteScanner
	}
	n, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n >= l.max {
		return 0, errFrameTooLarge
	}
	if int64(len(p)) > l.max-l.n {
		p = p[:l.max-l.n]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

func (l *limitReader) ReadByte() (byte, error) {
	if l.n >= l.max {
		return 0, errFrameTooLarge
	}
	b, err := l.r.ReadByte()
	if err == nil {
		l.n++
	}
	return b, err
}

func (l *limitReader) UnreadByte() error {
	err := l.r.UnreadByte()
	if err == nil {
		l.n--
	}
	return err
}

// decodeForward reads one forward-protocol message (Fluentd's Forward
// Protocol Specification v1): [tag, time, record, option?] (Message),
// [tag, [[time, record]…], option?] (Forward), [tag, bin, option?]
// (PackedForward; CompressedPackedForward when option.compressed is
// "gzip"). bufs, when not nil, are the connection's buffers, reused: the
// records alias them until the next message.
func decodeForward(d *msgpack.Decoder, bufs *forwardBufs) (forwardMsg, error) {
	fm := forwardMsg{bufs: bufs}
	if bufs != nil {
		fm.records = bufs.records[:0]
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return fm, err
	}
	if n < 2 || n > 4 {
		return fm, fmt.Errorf("a forward message is an array of 2 to 4 items, not %d", n)
	}
	if fm.tag, err = d.DecodeString(); err != nil {
		return fm, fmt.Errorf("tag: %w", err)
	}
	if fm.tag == "" {
		return fm, errors.New("empty tag")
	}
	if !utf8.ValidString(fm.tag) { // stored as text: UTF-8
		fm.tag = strings.ToValidUTF8(fm.tag, "\ufffd")
	}
	c, err := d.PeekCode()
	if err != nil {
		return fm, err
	}
	used := 2
	var packed []byte
	switch {
	case isArray(c):
		fm.mode = "forward"
		m, err := d.DecodeArrayLen()
		if err != nil {
			return fm, err
		}
		for range m {
			if err := fm.decodeEntry(d); err != nil {
				return fm, err
			}
		}
	case msgpcode.IsString(c) || msgpcode.IsBin(c):
		fm.mode = "packed"
		if packed, err = bufs.readBytes(d); err != nil {
			return fm, err
		}
	default:
		fm.mode = "message"
		if n < 3 {
			return fm, errors.New("a Message is [tag, time, record, option?]")
		}
		t, err := decodeTime(d)
		if err != nil {
			return fm, err
		}
		rec, err := decodeValue(d, 0, &fm.keys)
		if err != nil {
			return fm, err
		}
		fm.add(t, rec)
		used = 3
	}
	var opt map[string]any
	if n > used {
		v, err := decodeValue(d, 0, &fm.keys)
		if err != nil {
			return fm, fmt.Errorf("option: %w", err)
		}
		switch o := v.(type) {
		case map[string]any:
			opt = o
		case nil:
		default:
			return fm, fmt.Errorf("option is a %T, not a map", v)
		}
		n--
	}
	if n > used {
		return fm, fmt.Errorf("a %s message has %d items", fm.mode, n+1)
	}
	if c, ok := opt["chunk"].(string); ok {
		fm.chunk = c
	}
	if packed != nil {
		entries := packed
		if comp, _ := opt["compressed"].(string); comp == "gzip" {
			fm.mode = "compressed"
			zr, err := gzip.NewReader(bytes.NewReader(packed))
			if err != nil {
				return fm, fmt.Errorf("compressed entries: %w", err)
			}
			defer zr.Close()
			// Concatenated gzip members are one stream, as Fluentd writes
			// them; the inflated size is bounded.
			b, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
			if err != nil {
				return fm, fmt.Errorf("compressed entries: %w", err)
			}
			if len(b) > maxInflated {
				return fm, fmt.Errorf("compressed entries inflate beyond %d bytes: %w", maxInflated, errFrameTooLarge)
			}
			entries = b
		} else if comp != "" && comp != "text" {
			return fm, fmt.Errorf("compressed=%q: only gzip is known", comp)
		}
		if err := fm.decodePacked(entries); err != nil {
			return fm, fmt.Errorf("packed entries: %w", err)
		}
	}
	return fm, nil
}

func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func isMap(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

// decodeEntry reads one [time, record] entry.
func (fm *forwardMsg) decodeEntry(d *msgpack.Decoder) error {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("an entry is [time, record], not %d items", n)
	}
	t, err := decodeTime(d)
	if err != nil {
		return err
	}
	rec, err := decodeValue(d, 0, &fm.keys)
	if err != nil {
		return err
	}
	fm.add(t, rec)
	return nil
}

// add keeps rec if it is a map (Fluentd's record is a map); another value
// is counted bad and skipped, as Fluentd skips it.
func (fm *forwardMsg) add(t time.Time, rec any) {
	m, ok := rec.(map[string]any)
	if !ok || m == nil {
		fm.bad++
		return
	}
	fm.records = append(fm.records, Record{Tag: fm.tag, Time: t, Fields: m})
}

// timeExt reads a time extension's data p of type id: Fluentd's EventTime
// (0: seconds and nanoseconds, big-endian uint32s) or msgpack's timestamp
// (-1: 32, 64 or 96 bits).
func timeExt(id int8, p []byte) (time.Time, error) {
	n := len(p)
	switch {
	case id == 0 && n == 8:
		return time.Unix(int64(binary.BigEndian.Uint32(p[:4])), int64(binary.BigEndian.Uint32(p[4:]))), nil
	case id == -1 && n == 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0), nil
	case id == -1 && n == 8:
		v := binary.BigEndian.Uint64(p)
		return time.Unix(int64(v&0x3ffffffff), int64(v>>34)), nil
	case id == -1 && n == 12:
		return time.Unix(int64(binary.BigEndian.Uint64(p[4:])), int64(binary.BigEndian.Uint32(p[:4]))), nil
	}
	return time.Time{}, fmt.Errorf("time is extension %d of %d bytes, not Fluentd's EventTime", id, n)
}

// decodeTime reads an entry's time: an integer or float of seconds, or
// Fluentd's EventTime (ext type 0: seconds and nanoseconds, big-endian
// uint32s), or msgpack's timestamp extension (-1).
func decodeTime(d *msgpack.Decoder) (time.Time, error) {
	c, err := d.PeekCode()
	if err != nil {
		return time.Time{}, err
	}
	if msgpcode.IsExt(c) {
		id, n, err := d.DecodeExtHeader()
		if err != nil {
			return time.Time{}, err
		}
		if n < 0 || n > 12 {
			return time.Time{}, fmt.Errorf("time extension of %d bytes", n)
		}
		b := make([]byte, n)
		if err := d.ReadFull(b); err != nil {
			return time.Time{}, err
		}
		return timeExt(id, b)
	}
	// Only a number or nil is decoded: msgpack's own decoding of a map
	// makes a Go map of its declared length first, gigabytes for a few
	// bytes of input.
	if !(msgpcode.IsFixedNum(c) || c >= msgpcode.Float && c <= msgpcode.Int64 || c == msgpcode.Nil) {
		return time.Time{}, fmt.Errorf("time is not seconds or EventTime (msgpack code %#x)", c)
	}
	v, err := d.DecodeInterface()
	if err != nil {
		return time.Time{}, err
	}
	switch x := normalize(v).(type) {
	case int64:
		return time.Unix(x, 0), nil
	case uint64:
		if x > math.MaxInt64 {
			break
		}
		return time.Unix(int64(x), 0), nil
	case float64:
		sec, frac := math.Modf(x)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	case nil:
		return time.Now(), nil
	}
	return time.Time{}, fmt.Errorf("time is a %T, not seconds or EventTime", v)
}

// decodeValue reads a msgpack value with maps and arrays decoded here, so
// that nesting is bounded and a declared length allocates no more than
// the bytes present can fill; scalars are the library's.
func decodeValue(d *msgpack.Decoder, depth int, kc *keyCache) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsString(c):
		s, err := d.DecodeString()
		if err == nil && !utf8.ValidString(s) {
			// As bin that is not UTF-8: bytes, since CBOR text must be.
			return []byte(s), nil
		}
		return s, err
	case msgpcode.IsFixedNum(c) || c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64 ||
		c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32:
		return d.DecodeInt64()
	case isMap(c):
		if depth >= maxDepth {
			return nil, fmt.Errorf("record nested deeper than %d", maxDepth)
		}
		n, err := d.DecodeMapLen()
		if err != nil || n < 0 {
			return nil, err
		}
		m := make(map[string]any, min(n, 64))
		for range n {
			var key string
			if c, err := d.PeekCode(); err == nil && msgpcode.IsString(c) {
				if key, err = kc.decode(d); err != nil {
					return nil, err
				}
			} else {
				k, err := decodeValue(d, depth+1, kc)
				if err != nil {
					return nil, err
				}
				var ok bool
				if key, ok = k.(string); !ok {
					key = fmt.Sprint(k)
				}
			}
			v, err := decodeValue(d, depth+1, kc)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		return m, nil
	case isArray(c):
		if depth >= maxDepth {
			return nil, fmt.Errorf("record nested deeper than %d", maxDepth)
		}
		n, err := d.DecodeArrayLen()
		if err != nil || n < 0 {
			return nil, err
		}
		a := make([]any, 0, min(n, 64))
		for range n {
			v, err := decodeValue(d, depth+1, kc)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	}
	if msgpcode.IsBin(c) {
		// Read here: msgpack's own reading of a bin makes a buffer of
		// its declared length first, gigabytes for a few bytes of input.
		n, err := d.DecodeBytesLen()
		if err != nil {
			return nil, err
		}
		b, err := readGrowing(d, n)
		if err != nil {
			return nil, err
		}
		return normalize(b), nil
	}
	v, err := d.DecodeInterface()
	if err != nil {
		return nil, err
	}
	return normalize(v), nil
}

// decodeForwardJSON reads one forward message sent as JSON (Fluentd's
// in_forward accepts it; fluent-logger's MarshalAsJSON sends it): Message
// [tag, time, record, option?] or Forward [tag, [[time, record]…],
// option?]. PackedForward has no JSON form.
func decodeForwardJSON(d *json.Decoder) (forwardMsg, error) {
	var fm forwardMsg
	var v []any
	if err := d.Decode(&v); err != nil {
		return fm, err
	}
	if len(v) < 2 || len(v) > 4 {
		return fm, fmt.Errorf("a forward message is an array of 2 to 4 items, not %d", len(v))
	}
	tag, ok := v[0].(string)
	if !ok || tag == "" {
		return fm, errors.New("the tag is not a string")
	}
	fm.tag = tag
	used := 2
	jsonTime := func(x any) (time.Time, error) {
		n, ok := x.(json.Number)
		if !ok {
			return time.Time{}, fmt.Errorf("time is %T, not seconds", x)
		}
		if i, err := n.Int64(); err == nil {
			return time.Unix(i, 0), nil
		}
		f, err := n.Float64()
		if err != nil {
			return time.Time{}, err
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	if entries, isArr := v[1].([]any); isArr {
		fm.mode = "forward"
		for _, e := range entries {
			pair, ok := e.([]any)
			if !ok || len(pair) != 2 {
				return fm, errors.New("an entry is [time, record]")
			}
			t, err := jsonTime(pair[0])
			if err != nil {
				return fm, err
			}
			fm.add(t, jsonNumbers(pair[1]))
		}
	} else {
		fm.mode = "message"
		if len(v) < 3 {
			return fm, errors.New("a Message is [tag, time, record, option?]")
		}
		t, err := jsonTime(v[1])
		if err != nil {
			return fm, err
		}
		fm.add(t, jsonNumbers(v[2]))
		used = 3
	}
	if len(v) > used {
		opt, ok := v[used].(map[string]any)
		if !ok && v[used] != nil {
			return fm, fmt.Errorf("option is a %T, not a map", v[used])
		}
		if c, ok := opt["chunk"].(string); ok {
			fm.chunk = c
		}
		used++
	}
	if len(v) > used {
		return fm, fmt.Errorf("a %s message has %d items", fm.mode, len(v))
	}
	return fm, nil
}
