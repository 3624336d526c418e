package logs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/cbordet"
)

// A PackedForward message's records go from msgpack straight to the CBOR
// the journal stores (deterministic: shortest forms, map keys sorted by
// their encoding), without a Go map per record: what a record decoded by
// decodeValue and encoded by the journal would be, byte for byte
// (TestTranscodeMatchesDecode, FuzzTranscode). Readers decode the stored
// body as before.

// transcoder holds the buffers of one message's records.
type transcoder struct {
	// out holds the CBOR of the message's records one after another; each
	// Record's raw is a slice of it.
	out []byte
	// ents are the entries of the maps being transcoded, innermost last.
	ents []mapEntry
	tmp  []byte // a map's entries while they are put in order
	keys keyCache
}

// mapEntry is one entry of a map in out: its key from k, its value from
// v, up to end.
type mapEntry struct{ k, v, end int }

// appendString encodes s as a text string, or as a byte string when it is
// not UTF-8 (a text string that is not would make the event unreadable).
func appendString(dst, s []byte) []byte {
	major := byte(cbordet.Text)
	if !utf8.Valid(s) {
		major = cbordet.Bytes
	}
	return append(cbordet.AppendHead(dst, major, uint64(len(s))), s...)
}

// need reports whether b holds n bytes from pos.
func need(b []byte, pos, n int) error {
	if n < 0 || len(b)-pos < n {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// length reads a big-endian length of size bytes (1, 2 or 4) at pos.
func length(b []byte, pos, size int) (int, int, error) {
	if err := need(b, pos, size); err != nil {
		return 0, pos, err
	}
	switch size {
	case 1:
		return int(b[pos]), pos + 1, nil
	case 2:
		return int(binary.BigEndian.Uint16(b[pos:])), pos + 2, nil
	}
	return int(binary.BigEndian.Uint32(b[pos:])), pos + 4, nil
}

// record transcodes the msgpack map at pos and returns its CBOR (a slice
// of tc.out) and the position after it.
func (tc *transcoder) record(b []byte, pos int) ([]byte, int, error) {
	start := len(tc.out)
	pos, err := tc.value(b, pos, 0)
	if err != nil {
		tc.out = tc.out[:start]
		return nil, pos, err
	}
	return tc.out[start:len(tc.out):len(tc.out)], pos, nil
}

// value transcodes one msgpack value at pos into tc.out, with decodeValue's
// rules: integers as integers, bin as a string when it is UTF-8, a map's
// keys as strings, nesting bounded by maxDepth.
func (tc *transcoder) value(b []byte, pos, depth int) (int, error) {
	if pos >= len(b) {
		return pos, io.ErrUnexpectedEOF
	}
	c := b[pos]
	switch {
	case c <= 0x7f:
		tc.out = cbordet.AppendHead(tc.out, cbordet.Uint, uint64(c))
		return pos + 1, nil
	case c >= 0xe0:
		tc.out = cbordet.AppendInt(tc.out, int64(int8(c)))
		return pos + 1, nil
	case c <= 0x8f:
		return tc.mapValue(b, pos+1, int(c&0x0f), depth)
	case c <= 0x9f:
		return tc.array(b, pos+1, int(c&0x0f), depth)
	case c <= 0xbf:
		return tc.str(b, pos+1, int(c&0x1f))
	}
	var n int
	var err error
	switch c {
	case 0xc0:
		tc.out = append(tc.out, cbordet.Null)
		return pos + 1, nil
	case 0xc2:
		tc.out = append(tc.out, cbordet.False)
		return pos + 1, nil
	case 0xc3:
		tc.out = append(tc.out, cbordet.True)
		return pos + 1, nil
	case 0xc4, 0xd9: // bin 8, str 8
		n, pos, err = length(b, pos+1, 1)
	case 0xc5, 0xda:
		n, pos, err = length(b, pos+1, 2)
	case 0xc6, 0xdb:
		n, pos, err = length(b, pos+1, 4)
	case 0xca:
		if err := need(b, pos+1, 4); err != nil {
			return pos, err
		}
		tc.out = cbordet.AppendFloat(tc.out, float64(math.Float32frombits(binary.BigEndian.Uint32(b[pos+1:]))))
		return pos + 5, nil
	case 0xcb:
		if err := need(b, pos+1, 8); err != nil {
			return pos, err
		}
		tc.out = cbordet.AppendFloat(tc.out, math.Float64frombits(binary.BigEndian.Uint64(b[pos+1:])))
		return pos + 9, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		size := 1 << (c - 0xcc)
		if err := need(b, pos+1, size); err != nil {
			return pos, err
		}
		tc.out = cbordet.AppendHead(tc.out, cbordet.Uint, beUint(b[pos+1:pos+1+size]))
		return pos + 1 + size, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		if err := need(b, pos+1, size); err != nil {
			return pos, err
		}
		u := beUint(b[pos+1 : pos+1+size])
		shift := 64 - 8*size
		tc.out = cbordet.AppendInt(tc.out, int64(u<<shift)>>shift)
		return pos + 1 + size, nil
	case 0xdc, 0xdd: // array 16, array 32
		if n, pos, err = length(b, pos+1, 2<<(c-0xdc)); err != nil {
			return pos, err
		}
		return tc.array(b, pos, n, depth)
	case 0xde, 0xdf: // map 16, map 32
		if n, pos, err = length(b, pos+1, 2<<(c-0xde)); err != nil {
			return pos, err
		}
		return tc.mapValue(b, pos, n, depth)
	default:
		// Extension types (a timestamp, Fluentd's EventTime) and the
		// never-used 0xc1: as decodeValue has them.
		return tc.viaDecoder(b, pos, depth)
	}
	// bin or str of n bytes
	if err != nil {
		return pos, err
	}
	return tc.str(b, pos, n)
}

func beUint(b []byte) uint64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return u
}

func (tc *transcoder) str(b []byte, pos, n int) (int, error) {
	if err := need(b, pos, n); err != nil {
		return pos, err
	}
	tc.out = appendString(tc.out, b[pos:pos+n])
	return pos + n, nil
}

func (tc *transcoder) array(b []byte, pos, n, depth int) (int, error) {
	if depth >= maxDepth {
		return pos, fmt.Errorf("record nested deeper than %d", maxDepth)
	}
	if err := need(b, pos, n); err != nil { // each item takes a byte at least
		return pos, err
	}
	tc.out = cbordet.AppendHead(tc.out, cbordet.Array, uint64(n))
	var err error
	for range n {
		if pos, err = tc.value(b, pos, depth+1); err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// mapValue transcodes a map of n entries: each key and value into out,
// then the entries in the order of their keys' encodings, the last of
// equal keys kept (as a Go map keeps the last assignment).
func (tc *transcoder) mapValue(b []byte, pos, n, depth int) (int, error) {
	if depth >= maxDepth {
		return pos, fmt.Errorf("record nested deeper than %d", maxDepth)
	}
	if err := need(b, pos, 2*n); err != nil {
		return pos, err
	}
	start, base := len(tc.out), len(tc.ents)
	defer func() { tc.ents = tc.ents[:base] }()
	var err error
	for range n {
		k := len(tc.out)
		if pos >= len(b) {
			return pos, io.ErrUnexpectedEOF
		}
		if c := b[pos]; c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb {
			pos, err = tc.key(b, pos)
		} else {
			pos, err = tc.otherKey(b, pos, depth)
		}
		if err != nil {
			return pos, err
		}
		v := len(tc.out)
		if pos, err = tc.value(b, pos, depth+1); err != nil {
			return pos, err
		}
		tc.ents = append(tc.ents, mapEntry{k: k, v: v, end: len(tc.out)})
	}
	ents := tc.ents[base:]
	out := tc.out
	if len(ents) <= 32 {
		// Insertion sort, stable: a record's few keys.
		for i := 1; i < len(ents); i++ {
			e := ents[i]
			key := out[e.k:e.v]
			j := i
			for ; j > 0 && bytes.Compare(out[ents[j-1].k:ents[j-1].v], key) > 0; j-- {
				ents[j] = ents[j-1]
			}
			ents[j] = e
		}
	} else {
		slices.SortStableFunc(ents, func(x, y mapEntry) int { return bytes.Compare(out[x.k:x.v], out[y.k:y.v]) })
	}
	kept := ents[:0]
	for i, e := range ents {
		if i+1 < len(ents) && bytes.Equal(out[e.k:e.v], out[ents[i+1].k:ents[i+1].v]) {
			continue // a later entry has the same key
		}
		kept = append(kept, e)
	}
	tc.tmp = append(tc.tmp[:0], out[start:]...)
	tc.out = cbordet.AppendHead(out[:start], cbordet.Map, uint64(len(kept)))
	for _, e := range kept {
		tc.out = append(tc.out, tc.tmp[e.k-start:e.end-start]...)
	}
	return pos, nil
}

// key transcodes a str key, made UTF-8 as keyCache.decode makes it.
func (tc *transcoder) key(b []byte, pos int) (int, error) {
	n := int(b[pos] & 0x1f)
	pos++
	var err error
	switch b[pos-1] {
	case 0xd9:
		n, pos, err = length(b, pos, 1)
	case 0xda:
		n, pos, err = length(b, pos, 2)
	case 0xdb:
		n, pos, err = length(b, pos, 4)
	}
	if err == nil {
		err = need(b, pos, n)
	}
	if err != nil {
		return pos, err
	}
	k := b[pos : pos+n]
	if !utf8.Valid(k) {
		k = []byte(validKey(k))
	}
	tc.out = append(cbordet.AppendHead(tc.out, cbordet.Text, uint64(len(k))), k...)
	return pos + n, nil
}

// otherKey transcodes a key that is not a str as decodeValue has it: the
// key's value as a string.
func (tc *transcoder) otherKey(b []byte, pos, depth int) (int, error) {
	end, err := skipValue(b, pos, depth+1)
	if err != nil {
		return pos, err
	}
	d := msgpack.NewDecoder(bytes.NewReader(b[pos:end]))
	k, err := decodeValue(d, depth+1, &tc.keys)
	if err != nil {
		return pos, err
	}
	key, ok := k.(string)
	if !ok {
		key = fmt.Sprint(k)
	}
	tc.out = append(cbordet.AppendHead(tc.out, cbordet.Text, uint64(len(key))), key...)
	return end, nil
}

// viaDecoder transcodes the value at pos through decodeValue and the
// library's encoding: the rare types the transcoder leaves to them.
func (tc *transcoder) viaDecoder(b []byte, pos, depth int) (int, error) {
	end, err := skipValue(b, pos, depth)
	if err != nil {
		return pos, err
	}
	d := msgpack.NewDecoder(bytes.NewReader(b[pos:end]))
	v, err := decodeValue(d, depth, &tc.keys)
	if err != nil {
		return pos, err
	}
	// What the transcoder leaves to the library (extension types, keys
	// that are not strings), encoded as the journal encodes a body.
	enc, err := journal.EncodeValue(v)
	if err != nil {
		return pos, err
	}
	tc.out = append(tc.out, enc...)
	return end, nil
}

// skipValue returns the position after the msgpack value at pos, nesting
// bounded as decodeValue bounds it.
func skipValue(b []byte, pos, depth int) (int, error) {
	if pos >= len(b) {
		return pos, io.ErrUnexpectedEOF
	}
	c := b[pos]
	items := 0 // nested values that follow
	n := 0     // bytes of payload that follow
	var err error
	switch {
	case c <= 0x7f || c >= 0xe0:
		return pos + 1, nil
	case c <= 0x8f:
		items, pos = 2*int(c&0x0f), pos+1
	case c <= 0x9f:
		items, pos = int(c&0x0f), pos+1
	case c <= 0xbf:
		n, pos = int(c&0x1f), pos+1
	default:
		switch c {
		case 0xc0, 0xc2, 0xc3:
			return pos + 1, nil
		case 0xc1:
			return pos, fmt.Errorf("msgpack: invalid code %#x", c)
		case 0xc4, 0xd9:
			n, pos, err = length(b, pos+1, 1)
		case 0xc5, 0xda:
			n, pos, err = length(b, pos+1, 2)
		case 0xc6, 0xdb:
			n, pos, err = length(b, pos+1, 4)
		case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32: length, type, data
			n, pos, err = length(b, pos+1, 1<<(c-0xc7))
			n++
		case 0xca:
			n, pos = 4, pos+1
		case 0xcb:
			n, pos = 8, pos+1
		case 0xcc, 0xcd, 0xce, 0xcf:
			n, pos = 1<<(c-0xcc), pos+1
		case 0xd0, 0xd1, 0xd2, 0xd3:
			n, pos = 1<<(c-0xd0), pos+1
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type, data
			n, pos = 1+1<<(c-0xd4), pos+1
		case 0xdc:
			items, pos, err = length(b, pos+1, 2)
		case 0xdd:
			items, pos, err = length(b, pos+1, 4)
		case 0xde:
			items, pos, err = length(b, pos+1, 2)
			items *= 2
		case 0xdf:
			items, pos, err = length(b, pos+1, 4)
			items *= 2
		}
	}
	if err != nil {
		return pos, err
	}
	if err := need(b, pos, n); err != nil {
		return pos, err
	}
	pos += n
	if items > 0 {
		if depth >= maxDepth {
			return pos, fmt.Errorf("record nested deeper than %d", maxDepth)
		}
		if err := need(b, pos, items); err != nil {
			return pos, err
		}
	}
	for range items {
		if pos, err = skipValue(b, pos, depth+1); err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// decodePacked reads a PackedForward message's entries, [time, record]
// one after another, transcoding each record.
func (fm *forwardMsg) decodePacked(b []byte) error {
	tc := &transcoder{}
	if fm.bufs != nil && cap(fm.bufs.out) >= len(b)+len(b)/8 {
		tc.out = fm.bufs.out[:0]
	} else {
		tc.out = make([]byte, 0, len(b)+len(b)/8)
	}
	defer func() {
		if fm.bufs != nil && cap(tc.out) <= maxKeptBuf {
			fm.bufs.out = tc.out[:0]
		}
	}()
	for pos := 0; pos < len(b); {
		var n int
		var err error
		switch c := b[pos]; {
		case c >= 0x90 && c <= 0x9f:
			n, pos = int(c&0x0f), pos+1
		case c == 0xdc:
			n, pos, err = length(b, pos+1, 2)
		case c == 0xdd:
			n, pos, err = length(b, pos+1, 4)
		default:
			return fmt.Errorf("an entry is [time, record], not a value of code %#x", c)
		}
		if err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("an entry is [time, record], not %d items", n)
		}
		var t time.Time
		if t, pos, err = timeAt(b, pos); err != nil {
			return err
		}
		if pos >= len(b) {
			return io.ErrUnexpectedEOF
		}
		if c := b[pos]; !(c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf) {
			// Not a record: decoded as decodeEntry would, then skipped.
			end, err := skipValue(b, pos, 0)
			if err != nil {
				return err
			}
			if _, err := decodeValue(msgpack.NewDecoder(bytes.NewReader(b[pos:end])), 0, &tc.keys); err != nil {
				return err
			}
			fm.bad++
			pos = end
			continue
		}
		var raw []byte
		if raw, pos, err = tc.record(b, pos); err != nil {
			return err
		}
		fm.records = append(fm.records, Record{Tag: fm.tag, Time: t, raw: raw})
	}
	return nil
}

// timeAt reads an entry's time at pos as decodeTime does.
func timeAt(b []byte, pos int) (time.Time, int, error) {
	if pos >= len(b) {
		return time.Time{}, pos, io.ErrUnexpectedEOF
	}
	c := b[pos]
	var n int
	var err error
	switch {
	case c <= 0x7f:
		return time.Unix(int64(c), 0), pos + 1, nil
	case c >= 0xe0:
		return time.Unix(int64(int8(c)), 0), pos + 1, nil
	case c >= 0xcc && c <= 0xce, c >= 0xd0 && c <= 0xd3:
		size, signed := 1<<(c-0xcc), false
		if c >= 0xd0 {
			size, signed = 1<<(c-0xd0), true
		}
		if err := need(b, pos+1, size); err != nil {
			return time.Time{}, pos, err
		}
		u := beUint(b[pos+1 : pos+1+size])
		if signed {
			shift := 64 - 8*size
			return time.Unix(int64(u<<shift)>>shift, 0), pos + 1 + size, nil
		}
		return time.Unix(int64(u), 0), pos + 1 + size, nil
	}
	switch c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n, pos = 1<<(c-0xd4), pos+1
	case 0xc7, 0xc8, 0xc9:
		n, pos, err = length(b, pos+1, 1<<(c-0xc7))
	default:
		end, err := skipValue(b, pos, 0)
		if err != nil {
			return time.Time{}, pos, err
		}
		t, err := decodeTime(msgpack.NewDecoder(bytes.NewReader(b[pos:end])))
		return t, end, err
	}
	// In decodeTime's order: the type byte, the length's bound, the data.
	if err == nil {
		err = need(b, pos, 1)
	}
	if err == nil && n > 12 {
		err = fmt.Errorf("time extension of %d bytes", n)
	}
	if err == nil {
		err = need(b, pos, 1+n)
	}
	if err != nil {
		return time.Time{}, pos, err
	}
	t, err := timeExt(int8(b[pos]), b[pos+1:pos+1+n])
	return t, pos + 1 + n, err
}
