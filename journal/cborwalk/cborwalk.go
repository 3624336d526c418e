// Package cborwalk reads the CBOR of stored event bodies in place: item
// heads, skipping items, and text strings, without decoding anything else.
// Bodies are written by journal.EncodeBody in RFC 8949 core deterministic
// form (definite lengths, shortest heads, text-string keys); anything else —
// truncated items, indefinite lengths, reserved additional information,
// absurd lengths — is reported as not ok. It never panics, whatever the
// bytes, and is fuzzed through its users (journal/filter's FuzzWalk).
package cborwalk

import "encoding/binary"

// CBOR major types.
const (
	MajorUint   = 0
	MajorNegint = 1
	MajorBytes  = 2
	MajorText   = 3
	MajorArray  = 4
	MajorMap    = 5
	MajorTag    = 6
	MajorSimple = 7
)

// Head decodes the head of the data item at p[i]: its major type, its
// additional information, its argument, and the offset just past the head.
// ok is false for a truncated head and for indefinite lengths and reserved
// values, which a deterministic body never holds.
func Head(p []byte, i int) (major, info byte, arg uint64, next int, ok bool) {
	if i < 0 || i >= len(p) {
		return 0, 0, 0, 0, false
	}
	b := p[i]
	major, info = b>>5, b&0x1f
	i++
	switch {
	case info < 24:
		return major, info, uint64(info), i, true
	case info == 24:
		if len(p)-i < 1 {
			return 0, 0, 0, 0, false
		}
		return major, info, uint64(p[i]), i + 1, true
	case info == 25:
		if len(p)-i < 2 {
			return 0, 0, 0, 0, false
		}
		return major, info, uint64(binary.BigEndian.Uint16(p[i:])), i + 2, true
	case info == 26:
		if len(p)-i < 4 {
			return 0, 0, 0, 0, false
		}
		return major, info, uint64(binary.BigEndian.Uint32(p[i:])), i + 4, true
	case info == 27:
		if len(p)-i < 8 {
			return 0, 0, 0, 0, false
		}
		return major, info, binary.BigEndian.Uint64(p[i:]), i + 8, true
	default: // 28–30 reserved, 31 indefinite length or break
		return 0, 0, 0, 0, false
	}
}

// Skip returns the offset just past the data item at p[i]. It counts the
// items still owed instead of recursing, so nesting costs no stack and
// needs no depth limit; counts are checked against the bytes left, so
// garbage cannot make it loop for long.
func Skip(p []byte, i int) (int, bool) {
	for owed := uint64(1); owed > 0; owed-- {
		var (
			major byte
			arg   uint64
			ok    bool
		)
		if i < len(p) && p[i]&0x1f < 24 {
			// The common case, inlined: a head whose argument is in the
			// initial byte.
			major, arg = p[i]>>5, uint64(p[i]&0x1f)
			i++
		} else if major, _, arg, i, ok = Head(p, i); !ok {
			return 0, false
		}
		rest := uint64(len(p) - i)
		switch major {
		case MajorBytes, MajorText:
			if arg > rest {
				return 0, false
			}
			i += int(arg)
		case MajorArray:
			// Every item takes at least a byte.
			if arg > rest {
				return 0, false
			}
			owed += arg
		case MajorMap:
			if arg > rest/2 {
				return 0, false
			}
			owed += 2 * arg
		case MajorTag: // the tag number, then one item
			owed++
		}
	}
	return i, true
}

// Text returns the bytes of the text string at p[i] and the offset past it.
func Text(p []byte, i int) (s []byte, next int, ok bool) {
	major, _, arg, next, ok := Head(p, i)
	if !ok || major != MajorText || arg > uint64(len(p)-next) {
		return nil, 0, false
	}
	end := next + int(arg)
	return p[next:end], end, true
}
