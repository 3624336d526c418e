package kv

import (
	"encoding/binary"
	"errors"
)

// The projection under "p/kv/":
//
//	"k/" key                                → current KeyValue (encodeKV)
//	"h/" esc(key) 0x00 0x01 be64(rev)       → the key's version at rev: 'p' encodeKV, or 'd' (a delete)
//	"l/" be64(id)                           → lease: be64 granted TTL (s), be64 remaining TTL (s), be64 base time (ns)
//	"x/" be64(id) key                       → "" (the keys attached to a lease)
//	"rev"                                   → be64 the KV revision: the seq of the last event that changed a key
//	"compact"                               → be64 the revision of the latest kv.compact (absent: none)
//
// esc is order-preserving (0x00 → 0x00 0xff, terminated by 0x00 0x01), so
// the versions of one key are contiguous and sorted by revision, and the
// keys of a range [start, end) map onto the range [esc(start), esc(end)).
var (
	pfxCur     = []byte("k/")
	pfxHist    = []byte("h/")
	pfxLease   = []byte("l/")
	pfxLKeys   = []byte("x/")
	keyKVRev   = []byte("rev")
	keyCompact = []byte("compact")
)

func curKey(key []byte) []byte { return append(append([]byte(nil), pfxCur...), key...) }

func appendEsc(dst, key []byte) []byte {
	for _, c := range key {
		if c == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// histKeyPrefix is the prefix of every version of key.
func histKeyPrefix(key []byte) []byte {
	return append(appendEsc(append([]byte(nil), pfxHist...), key), 0, 1)
}

func histKey(key []byte, rev int64) []byte {
	return binary.BigEndian.AppendUint64(histKeyPrefix(key), uint64(rev))
}

// histRangeBounds returns the history bounds of the keys [start, end) as
// RangeRequest addresses them.
func histRangeBounds(start, end []byte) (lo, hi []byte) {
	if end == nil {
		p := histKeyPrefix(start)
		hi = append(p[:len(p)-1:len(p)-1], 2)
		return histKeyPrefix(start), hi
	}
	lo = appendEsc(append([]byte(nil), pfxHist...), start)
	if isAllFrom(end) {
		return lo, []byte("h0") // prefixEnd("h/")
	}
	return lo, appendEsc(append([]byte(nil), pfxHist...), end)
}

// parseHistKey splits a history key (without the engine prefix) into the
// user key and the revision.
func parseHistKey(k []byte) (key []byte, rev int64, err error) {
	if len(k) < len(pfxHist)+2+8 {
		return nil, 0, errors.New("kv: short history key")
	}
	body := k[len(pfxHist) : len(k)-8]
	rev = int64(binary.BigEndian.Uint64(k[len(k)-8:]))
	key = make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		if body[i] != 0 {
			key = append(key, body[i])
			continue
		}
		if i+1 >= len(body) {
			return nil, 0, errors.New("kv: bad history key escape")
		}
		switch body[i+1] {
		case 0xff:
			key = append(key, 0)
			i++
		case 1:
			if i+2 != len(body) {
				return nil, 0, errors.New("kv: bad history key terminator")
			}
			return key, rev, nil
		default:
			return nil, 0, errors.New("kv: bad history key escape")
		}
	}
	return nil, 0, errors.New("kv: unterminated history key")
}

func leaseKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), pfxLease...), uint64(id))
}

func leaseKeysPrefix(id int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), pfxLKeys...), uint64(id))
}

func leaseKeysKey(id int64, key []byte) []byte { return append(leaseKeysPrefix(id), key...) }

// isAllFrom reports whether end is "\x00": every key >= the start.
func isAllFrom(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// curBounds returns the current-state bounds of [key, end).
func curBounds(key, end []byte) (lo, hi []byte) {
	lo = curKey(key)
	switch {
	case end == nil:
		return lo, append(curKey(key), 0)
	case isAllFrom(end):
		return lo, []byte("k0") // prefixEnd("k/")
	default:
		return lo, curKey(end)
	}
}

// inRange reports whether k is in [key, end) as RangeRequest addresses it.
func inRange(k, key, end []byte) bool {
	switch {
	case end == nil:
		return string(k) == string(key)
	case isAllFrom(end):
		return string(k) >= string(key)
	default:
		return string(k) >= string(key) && string(k) < string(end)
	}
}

func encodeKV(kv *KeyValue) []byte {
	b := make([]byte, 32, 32+len(kv.Value))
	binary.BigEndian.PutUint64(b[0:], uint64(kv.CreateRev))
	binary.BigEndian.PutUint64(b[8:], uint64(kv.ModRev))
	binary.BigEndian.PutUint64(b[16:], uint64(kv.Version))
	binary.BigEndian.PutUint64(b[24:], uint64(kv.Lease))
	return append(b, kv.Value...)
}

// decodeKV decodes encodeKV's bytes; the value is copied.
func decodeKV(key, b []byte) (KeyValue, error) {
	if len(b) < 32 {
		return KeyValue{}, errors.New("kv: short stored value")
	}
	return KeyValue{
		Key:       append([]byte(nil), key...),
		CreateRev: int64(binary.BigEndian.Uint64(b[0:])),
		ModRev:    int64(binary.BigEndian.Uint64(b[8:])),
		Version:   int64(binary.BigEndian.Uint64(b[16:])),
		Lease:     int64(binary.BigEndian.Uint64(b[24:])),
		Value:     append([]byte{}, b[32:]...),
	}, nil
}

type leaseRec struct {
	Granted, Remaining int64 // seconds
	Base               int64 // ns: the time Remaining counts from
}

func encodeLease(l leaseRec) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], uint64(l.Granted))
	binary.BigEndian.PutUint64(b[8:], uint64(l.Remaining))
	binary.BigEndian.PutUint64(b[16:], uint64(l.Base))
	return b
}

func decodeLease(b []byte) (leaseRec, error) {
	if len(b) != 24 {
		return leaseRec{}, errors.New("kv: bad lease record")
	}
	return leaseRec{
		Granted:   int64(binary.BigEndian.Uint64(b[0:])),
		Remaining: int64(binary.BigEndian.Uint64(b[8:])),
		Base:      int64(binary.BigEndian.Uint64(b[16:])),
	}, nil
}
