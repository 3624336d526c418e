package journal

import (
	"encoding/binary"
	"fmt"
)

// Keys of a stream's pebble instance (docs/events.md, "Storage"):
//
//	m/format                               on-disk format version (uvarint)
//	m/anchor                               seq (8B BE) ‖ hash (32B) of the last event dropped by retention
//	m/sig/ + be64(seq) + pubkey (32B)      signed chain head (Signature, SignatureLen bytes)
//	m/import                               the record owed by an import more parts were to follow (an event body)
//	e/ + be64(seq)                         record (EncodeRecord)
//	s/ + uvarint(len) + subject + be64(seq) subject history index (empty value)
//	k/ + uvarint(len) + kind + be64(seq)   kind index (empty value)
//	p/ + engine + / + key                  engine projection state
var (
	keyFormat = []byte("m/format")
	keyAnchor = []byte("m/anchor")
	// keyPendingImport holds ImportOptions.Pending of an unfinished
	// multi-part import.
	keyPendingImport = []byte("m/import")
	prefixSig        = []byte("m/sig/")

	prefixEvent   = []byte("e/")
	prefixSubject = []byte("s/")
	prefixKind    = []byte("k/")
	prefixProj    = []byte("p/")
)

// formatVersion is the on-disk format this code writes and understands.
const formatVersion = 1

func eventKey(seq int64) []byte {
	k := make([]byte, 2+8)
	copy(k, prefixEvent)
	binary.BigEndian.PutUint64(k[2:], uint64(seq))
	return k
}

// appendEventKey appends the key of seq to dst, for loops that reuse a buffer.
func appendEventKey(dst []byte, seq int64) []byte {
	dst = append(dst, prefixEvent...)
	return binary.BigEndian.AppendUint64(dst, uint64(seq))
}

func seqOfEventKey(k []byte) (int64, error) {
	if len(k) != 10 || k[0] != 'e' || k[1] != '/' {
		return 0, fmt.Errorf("malformed event key %q", k)
	}
	return int64(binary.BigEndian.Uint64(k[2:])), nil
}

// indexPrefix returns prefix + uvarint(len(name)) + name: every index key of
// name starts with it, and no other name's keys do.
func indexPrefix(prefix []byte, name string) []byte {
	k := make([]byte, 0, len(prefix)+binary.MaxVarintLen64+len(name)+8)
	k = append(k, prefix...)
	k = binary.AppendUvarint(k, uint64(len(name)))
	return append(k, name...)
}

func appendIndexKey(dst, prefix []byte, name string, seq int64) []byte {
	dst = append(dst, prefix...)
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	return binary.BigEndian.AppendUint64(dst, uint64(seq))
}

// seqOfIndexKey returns the seq at the end of an index key.
func seqOfIndexKey(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k[len(k)-8:]))
}

// projPrefix returns "p/<engine>/".
func projPrefix(engine string) []byte {
	return []byte("p/" + engine + "/")
}

// PrefixEnd returns the smallest key greater than every key starting with
// p: the upper bound of a prefix scan, or nil when there is none (p is
// empty or all 0xff). The one implementation; engines use it too.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func encodeAnchor(seq int64, h Hash) []byte {
	v := make([]byte, 8+len(h))
	binary.BigEndian.PutUint64(v, uint64(seq))
	copy(v[8:], h[:])
	return v
}

func decodeAnchor(v []byte) (int64, Hash, error) {
	var h Hash
	if len(v) != 8+len(h) {
		return 0, h, fmt.Errorf("malformed m/anchor of %d bytes", len(v))
	}
	copy(h[:], v[8:])
	return int64(binary.BigEndian.Uint64(v)), h, nil
}
