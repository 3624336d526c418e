package journal

import (
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEventJSON appends e exactly as encoding/json writes eventJSON
// (EncodeJSON: no HTML escaping, no newline), writing the envelope by hand:
// every event a tail or NATS reader gets is encoded once, and reflection
// over the envelope was most of that (docs/benchmarks.md, "Emit load").
// The free-form parts (data, and the capture fields) still go through
// encoding/json. TestEventJSONMatchesEncodingJSON and FuzzEventJSON hold
// the two to the same bytes.
func appendEventJSON(dst []byte, e *Event) ([]byte, error) {
	dst = append(dst, `{"stream":`...)
	dst = appendJSONString(dst, e.Stream)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = time.Unix(0, e.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","kind":`...)
	dst = appendJSONString(dst, e.Kind)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, e.Subject)
	dst = append(dst, `,"node":`...)
	dst = appendJSONString(dst, e.Node)
	a := &e.Actor
	dst = append(dst, `,"actor":{"uid":`...)
	dst = strconv.AppendInt(dst, int64(a.UID), 10)
	dst = append(dst, `,"gid":`...)
	dst = strconv.AppendInt(dst, int64(a.GID), 10)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(a.PID), 10)
	if a.User != "" {
		dst = append(dst, `,"user":`...)
		dst = appendJSONString(dst, a.User)
	}
	if a.Comm != "" {
		dst = append(dst, `,"comm":`...)
		dst = appendJSONString(dst, a.Comm)
	}
	dst = append(dst, `,"via":`...)
	dst = appendJSONString(dst, a.Via)
	if a.Addr != "" {
		dst = append(dst, `,"addr":`...)
		dst = appendJSONString(dst, a.Addr)
	}
	if a.Principal != "" {
		dst = append(dst, `,"principal":`...)
		dst = appendJSONString(dst, a.Principal)
	}
	dst = append(dst, '}')
	var err error
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		if dst, err = appendJSONAny(dst, e.Data); err != nil {
			return nil, err
		}
	}
	for _, f := range [...]struct {
		key string
		v   any
		set bool
	}{
		{`,"evt":`, e.Evt, e.Evt != nil},
		{`,"proc":`, e.Proc, e.Proc != nil},
		{`,"user":`, e.User, e.User != nil},
		{`,"fd":`, e.FD, e.FD != nil},
		{`,"container":`, e.Container, e.Container != nil},
	} {
		if f.set {
			if dst, err = appendJSONValue(dst, f.key, f.v); err != nil {
				return nil, err
			}
		}
	}
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, e.Prev[:])
	dst = append(dst, `","hash":"`...)
	dst = hex.AppendEncode(dst, e.Hash[:])
	return append(dst, `"}`...), nil
}

func appendJSONValue(dst []byte, key string, v any) ([]byte, error) {
	b, err := EncodeJSON(v)
	if err != nil {
		return nil, err
	}
	dst = append(dst, key...)
	return append(dst, b...), nil
}

// appendJSONAny appends the JSON of a value of an event's data, as
// encoding/json writes it: what decoding CBOR gives (maps with string
// keys, sorted; lists; strings, integers, floats, booleans, null) by hand,
// anything else through encoding/json.
func appendJSONAny(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			break // encoding/json's error
		}
		return appendJSONFloat(dst, x), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendJSONAny(dst, x[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, el := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSONAny(dst, el); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendJSONValue(dst, "", v)
}

// appendJSONFloat formats f as encoding/json does (ES6 number to string).
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 as e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes a string with
// HTML escaping off: control characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
