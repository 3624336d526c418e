package filter

import (
	"math"
	"unsafe"

	"github.com/cairnhq/cairn/journal/cborwalk"
)

// This file reads the stored CBOR body of an event just far enough to answer
// one field, so an envelope predicate never pays for decoding the body (and
// above all its `data`) with fxamacker/cbor. Bodies are written by
// journal.EncodeBody in RFC 8949 core deterministic form: definite lengths,
// shortest heads, text-string keys. Anything else — truncated items,
// indefinite lengths, reserved additional info, absurd lengths — makes the
// walker report the field as missing; it never panics, whatever the bytes.

// CBOR major types, as package cborwalk names them.
const (
	majorUint   = cborwalk.MajorUint
	majorNegint = cborwalk.MajorNegint
	majorBytes  = cborwalk.MajorBytes
	majorText   = cborwalk.MajorText
	majorArray  = cborwalk.MajorArray
	majorMap    = cborwalk.MajorMap
	majorTag    = cborwalk.MajorTag
	majorSimple = cborwalk.MajorSimple
)

func head(p []byte, i int) (major, info byte, arg uint64, next int, ok bool) {
	return cborwalk.Head(p, i)
}

func skip(p []byte, i int) (int, bool) { return cborwalk.Skip(p, i) }

func textAt(p []byte, i int) (s []byte, next int, ok bool) { return cborwalk.Text(p, i) }

// readText returns the text string at p[i]. The string aliases p: it is only
// handed to CEL for one evaluation, during which the record is not touched,
// and copying every string a filter reads would cost an allocation each.
func readText(p []byte, i int) (string, bool) {
	s, _, ok := textAt(p, i)
	if !ok {
		return "", false
	}
	if len(s) == 0 {
		return "", true
	}
	return unsafe.String(&s[0], len(s)), true
}

// readInt returns the integer at p[i]; ok is false for anything else and for
// integers beyond int64, which CEL's int cannot hold.
func readInt(p []byte, i int) (int64, bool) {
	major, _, arg, _, ok := head(p, i)
	if !ok || arg > math.MaxInt64 {
		return 0, false
	}
	switch major {
	case majorUint:
		return int64(arg), true
	case majorNegint:
		return -1 - int64(arg), true
	}
	return 0, false
}

// readFloat returns the floating-point number at p[i] in any of the three
// widths CBOR has; deterministic encoding picks the shortest that is exact,
// so 1.5 is stored as a half.
func readFloat(p []byte, i int) (float64, bool) {
	major, info, arg, _, ok := head(p, i)
	if !ok || major != majorSimple {
		return 0, false
	}
	switch info {
	case 25:
		return halfToFloat(uint16(arg)), true
	case 26:
		return float64(math.Float32frombits(uint32(arg))), true
	case 27:
		return math.Float64frombits(arg), true
	}
	return 0, false
}

// halfToFloat widens an IEEE 754 half-precision number.
func halfToFloat(h uint16) float64 {
	exp, frac := int(h>>10)&0x1f, float64(h&0x3ff)
	var f float64
	switch exp {
	case 0: // zero and subnormals
		f = math.Ldexp(frac, -24)
	case 0x1f:
		if frac == 0 {
			f = math.Inf(1)
		} else {
			f = math.NaN()
		}
	default:
		f = math.Ldexp(frac+1024, exp-25)
	}
	if h&0x8000 != 0 {
		f = -f
	}
	return f
}

// mapLookup finds key in the map at p[i] and returns where its value starts.
func mapLookup(p []byte, i int, key string) (int, bool) {
	major, _, n, next, ok := head(p, i)
	if !ok || major != majorMap || n > uint64(len(p)-next)/2 {
		return 0, false
	}
	for ; n > 0; n-- {
		k, vstart, ok := textAt(p, next)
		if !ok {
			return 0, false
		}
		if string(k) == key {
			return vstart, true
		}
		if next, ok = skip(p, vstart); !ok {
			return 0, false
		}
	}
	return 0, false
}

// bodyIndex locates the top-level values of one body on demand. It scans the
// top-level map once, at most, and only as far as the keys asked for: a
// predicate on kind stops after kind, whatever follows it.
type bodyIndex struct {
	body  []byte
	pos   int // offset of the next entry not yet scanned; -1 before the map head
	left  uint64
	seen  uint16 // bit per topKey
	start [nTop]int
	end   [nTop]int
}

func (x *bodyIndex) reset(body []byte) {
	x.body, x.pos, x.left, x.seen = body, -1, 0, 0
}

// value returns the span of the top-level value under k.
func (x *bodyIndex) value(k topKey) (start, end int, ok bool) {
	if k == topNone {
		return 0, 0, false
	}
	if x.pos < 0 {
		major, _, n, next, ok := head(x.body, 0)
		if !ok || major != majorMap || n > uint64(len(x.body)-next)/2 {
			n, next = 0, 0
		}
		x.pos, x.left = next, n
	}
	for x.seen&(1<<k) == 0 {
		if x.left == 0 {
			return 0, 0, false
		}
		key, vstart, ok := textAt(x.body, x.pos)
		var vend int
		if ok {
			vend, ok = skip(x.body, vstart)
		}
		if !ok {
			x.left = 0 // malformed from here on: what was found stands
			return 0, 0, false
		}
		x.pos = vend
		x.left--
		if t := topKeyOf(key); t != topNone && x.seen&(1<<t) == 0 {
			x.seen |= 1 << t
			x.start[t], x.end[t] = vstart, vend
		}
	}
	return x.start[k], x.end[k], true
}

// topKeyOf names a top-level key. The switch on string(key) does not
// allocate.
func topKeyOf(key []byte) topKey {
	switch string(key) {
	case "kind":
		return topKind
	case "subject":
		return topSubject
	case "node":
		return topNode
	case "actor":
		return topActor
	case "data":
		return topData
	case "evt":
		return topEvt
	case "proc":
		return topProc
	case "user":
		return topUser
	case "fd":
		return topFD
	case "container":
		return topContainer
	}
	return topNone
}

// lookup returns where the value of f starts in the body: the top-level
// value itself, or the value under f.key inside it.
func (x *bodyIndex) lookup(f *field) (int, bool) {
	start, _, ok := x.value(f.top)
	if !ok {
		return 0, false
	}
	if f.key == "" {
		return start, true
	}
	return mapLookup(x.body, start, f.key)
}
