package journal

import (
	"encoding/binary"
	"errors"
)

var errPeek = errors.New("body is not a definite-length CBOR map")

// peekEnvelope returns the kind and subject of a stored body without
// decoding it: it walks the top-level CBOR map and skips every other value.
// The strings alias body.
func peekEnvelope(body []byte) (kind, subject []byte, err error) {
	major, n, p, err := cborHead(body)
	if err != nil || major != 5 {
		return nil, nil, errPeek
	}
	found := 0
	for i := uint64(0); i < n && found < 2; i++ {
		km, kl, q, err := cborHead(p)
		if err != nil || km != 3 || uint64(len(q)) < kl {
			return nil, nil, errPeek
		}
		key := q[:kl]
		p = q[kl:]
		switch string(key) {
		case "kind", "subject":
			vm, vl, q, err := cborHead(p)
			if err != nil || vm != 3 || uint64(len(q)) < vl {
				return nil, nil, errPeek
			}
			if key[0] == 'k' {
				kind = q[:vl]
			} else {
				subject = q[:vl]
			}
			p = q[vl:]
			found++
		default:
			if p, err = cborSkip(p, 0); err != nil {
				return nil, nil, err
			}
		}
	}
	return kind, subject, nil
}

// cborHead reads one item head: its major type and argument.
func cborHead(p []byte) (major byte, arg uint64, rest []byte, err error) {
	if len(p) == 0 {
		return 0, 0, nil, errPeek
	}
	major, ai := p[0]>>5, p[0]&31
	p = p[1:]
	switch {
	case ai < 24:
		return major, uint64(ai), p, nil
	case ai == 24 && len(p) >= 1:
		return major, uint64(p[0]), p[1:], nil
	case ai == 25 && len(p) >= 2:
		return major, uint64(binary.BigEndian.Uint16(p)), p[2:], nil
	case ai == 26 && len(p) >= 4:
		return major, uint64(binary.BigEndian.Uint32(p)), p[4:], nil
	case ai == 27 && len(p) >= 8:
		return major, binary.BigEndian.Uint64(p), p[8:], nil
	}
	// Indefinite lengths never occur in deterministic encoding.
	return 0, 0, nil, errPeek
}

// cborSkip skips one complete item.
func cborSkip(p []byte, depth int) ([]byte, error) {
	if depth > 64 {
		return nil, errPeek
	}
	major, n, p, err := cborHead(p)
	if err != nil {
		return nil, err
	}
	switch major {
	case 0, 1, 7: // integers, simple values and floats carry everything in the head
		return p, nil
	case 2, 3:
		if uint64(len(p)) < n {
			return nil, errPeek
		}
		return p[n:], nil
	case 4, 5:
		if major == 5 {
			n *= 2
		}
		if n > uint64(len(p)) { // every item takes at least one byte
			return nil, errPeek
		}
		for i := uint64(0); i < n; i++ {
			if p, err = cborSkip(p, depth+1); err != nil {
				return nil, err
			}
		}
		return p, nil
	case 6:
		return cborSkip(p, depth+1)
	}
	return nil, errPeek
}

// globMatch reports whether s matches pattern, where '*' matches any run of
// bytes (including '/' and '.'), '?' any one byte, and '\' escapes the next
// byte. Events' kinds and subjects are matched byte-wise.
func globMatch(pattern string, s []byte) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if c == '\\' && px+1 < len(pattern) {
					c = pattern[px+1]
					if sx < len(s) && s[sx] == c {
						px += 2
						sx++
						continue
					}
				} else if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// isGlob reports whether pattern has glob characters; a pattern without any
// is an exact name and can use an index.
func isGlob(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '\\':
			return true
		}
	}
	return false
}

// MatchQuery reports whether one event matches q's seq and time bounds and
// its kind and subject globs (Reverse is ignored), with the rules Scan
// uses. Subscribers use it to filter live events as Scan filters stored ones.
func MatchQuery(q Query, r *Raw) bool {
	if q.From > 0 && r.Seq < q.From || q.To > 0 && r.Seq > q.To {
		return false
	}
	if CheckRecord(r.Record) != nil {
		return false
	}
	if t := r.Time(); q.Since != 0 && t < q.Since || q.Until != 0 && t > q.Until {
		return false
	}
	if q.Kind == "" && q.Subject == "" {
		return true
	}
	kind, subject, err := peekEnvelope(r.Body())
	if err != nil {
		return false
	}
	return (q.Kind == "" || globMatch(q.Kind, kind)) && (q.Subject == "" || globMatch(q.Subject, subject))
}
