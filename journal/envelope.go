package journal

import (
	"errors"

	"github.com/cairnhq/cairn/journal/cborwalk"
)

var errPeek = errors.New("body is not a definite-length CBOR map")

// peekEnvelope returns the kind and subject of a stored body without
// decoding it: it walks the top-level CBOR map and skips every other value.
// The strings alias body.
func peekEnvelope(body []byte) (kind, subject []byte, err error) {
	major, _, n, i, ok := cborwalk.Head(body, 0)
	if !ok || major != cborwalk.MajorMap {
		return nil, nil, errPeek
	}
	found := 0
	for ; n > 0 && found < 2; n-- {
		key, next, ok := cborwalk.Text(body, i)
		if !ok {
			return nil, nil, errPeek
		}
		switch string(key) {
		case "kind", "subject":
			v, after, ok := cborwalk.Text(body, next)
			if !ok {
				return nil, nil, errPeek
			}
			if key[0] == 'k' {
				kind = v
			} else {
				subject = v
			}
			i = after
			found++
		default:
			if i, ok = cborwalk.Skip(body, next); !ok {
				return nil, nil, errPeek
			}
		}
	}
	return kind, subject, nil
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
