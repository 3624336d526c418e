// Package cbordet appends the items of CBOR's core deterministic encoding
// (RFC 8949 §4.2.1: shortest forms, definite lengths), as the journal
// encodes event bodies: for the encoders that write a body's bytes
// without the reflection of a general CBOR library. Sorting a map's keys
// is the caller's.
package cbordet

import (
	"encoding/binary"
	"math"

	"github.com/x448/float16"

	"github.com/cairnhq/cairn/journal/cborwalk"
)

// Major types, as cborwalk reads them.
const (
	Uint  = cborwalk.MajorUint
	Neg   = cborwalk.MajorNegint
	Bytes = cborwalk.MajorBytes
	Text  = cborwalk.MajorText
	Array = cborwalk.MajorArray
	Map   = cborwalk.MajorMap
)

// Simple values.
const (
	False = 0xf4
	True  = 0xf5
	Null  = 0xf6
)

// AppendHead appends the head of an item of major type major whose
// argument is n, in its shortest form.
func AppendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), n)
}

// AppendInt appends an integer.
func AppendInt(dst []byte, i int64) []byte {
	if i >= 0 {
		return AppendHead(dst, Uint, uint64(i))
	}
	return AppendHead(dst, Neg, uint64(-1-i))
}

// AppendText appends s as a text string (s is taken as it is; text that is
// not UTF-8 is the caller's to avoid).
func AppendText(dst []byte, s string) []byte {
	return append(AppendHead(dst, Text, uint64(len(s))), s...)
}

// AppendFloat appends f in the shortest of half, single and double
// precision that holds it exactly; NaN and the infinities as halves.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, 0xf9, 0x7e, 0x00)
	case math.IsInf(f, 1):
		return append(dst, 0xf9, 0x7c, 0x00)
	case math.IsInf(f, -1):
		return append(dst, 0xf9, 0xfc, 0x00)
	}
	f32 := float32(f)
	if float64(f32) != f {
		return binary.BigEndian.AppendUint64(append(dst, 0xfb), math.Float64bits(f))
	}
	// A half when it holds f exactly (subnormal halves included), as the
	// CBOR library decides with the same package.
	if h := float16.Fromfloat32(f32); h.Float32() == f32 {
		return binary.BigEndian.AppendUint16(append(dst, 0xf9), h.Bits())
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xfa), math.Float32bits(f32))
}
