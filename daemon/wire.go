package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/cairnhq/cairn/client/wire"
)

// wireRequest is one decoded line of the wire protocol.
type wireRequest struct {
	ID     int64
	DSL    string
	Cancel bool
	Raw    bool // a plain statement line: raw lines run in order
}

// envelope is the JSON form of a request line.
type envelope struct {
	ID     *int64 `json:"id"`
	DSL    string `json:"dsl"`
	Cancel bool   `json:"cancel"`
}

// wireError is a request line that could not be decoded; ID is the request
// id when one could be read, else 0.
type wireError struct {
	ID  int64
	Msg string
}

func (e *wireError) Error() string { return e.Msg }

// decodeRequest decodes one line: a JSON envelope {"id":…,"dsl":…} or
// {"id":…,"cancel":true}, or a raw statement, which takes the id nextID
// returns. The line has no trailing newline.
func decodeRequest(line []byte, nextID func() int64) (wireRequest, error) {
	trimmed := bytes.TrimSpace(line)
	if req, ok := decodePlainEnvelope(trimmed); ok {
		return req, nil
	}
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var env envelope
		if err := json.Unmarshal(trimmed, &env); err != nil {
			return wireRequest{}, &wireError{Msg: fmt.Sprintf("malformed JSON request: %v; send {\"id\":N,\"dsl\":\"STATEMENT\"} or a plain statement", err)}
		}
		if env.ID == nil {
			return wireRequest{}, &wireError{Msg: `JSON request without "id"; send {"id":N,"dsl":"STATEMENT"}`}
		}
		if *env.ID <= 0 {
			return wireRequest{}, &wireError{Msg: fmt.Sprintf(`request id %d: ids are positive integers`, *env.ID)}
		}
		if env.Cancel {
			return wireRequest{ID: *env.ID, Cancel: true}, nil
		}
		if !utf8.ValidString(env.DSL) {
			return wireRequest{}, &wireError{ID: *env.ID, Msg: "statement is not valid UTF-8"}
		}
		return wireRequest{ID: *env.ID, DSL: env.DSL}, nil
	}
	id := nextID()
	if !utf8.Valid(line) {
		return wireRequest{}, &wireError{ID: id, Msg: "statement is not valid UTF-8"}
	}
	return wireRequest{ID: id, DSL: string(line), Raw: true}, nil
}

// decodePlainEnvelope decodes the envelope clients usually send,
// {"id":N,"dsl":"TEXT"} with N a positive integer and TEXT valid UTF-8 that
// needs no escape, giving exactly what the encoding/json path gives; ok is
// false for any other line, which then takes that path.
func decodePlainEnvelope(b []byte) (req wireRequest, ok bool) {
	const head, mid = `{"id":`, `,"dsl":"`
	if !bytes.HasPrefix(b, []byte(head)) {
		return wireRequest{}, false
	}
	i := len(head)
	if i >= len(b) || b[i] < '1' || b[i] > '9' {
		return wireRequest{}, false
	}
	var id int64
	for start := i; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start == 18 {
			return wireRequest{}, false // may not fit an int64: let encoding/json judge
		}
		id = id*10 + int64(b[i]-'0')
	}
	if !bytes.HasPrefix(b[i:], []byte(mid)) {
		return wireRequest{}, false
	}
	i += len(mid)
	if len(b) < i+2 || b[len(b)-2] != '"' || b[len(b)-1] != '}' {
		return wireRequest{}, false
	}
	text := b[i : len(b)-2]
	for _, c := range text {
		if c < 0x20 || c == '"' || c == '\\' {
			return wireRequest{}, false
		}
	}
	if !utf8.Valid(text) {
		return wireRequest{}, false // encoding/json would replace the bad bytes
	}
	return wireRequest{ID: id, DSL: string(text)}, true
}

// encodeAnswer renders {"id":ID,"KIND":payload}\n, payload being JSON.
func encodeAnswer(dst []byte, id int64, kind string, payload []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"`...)
	dst = append(dst, kind...)
	dst = append(dst, `":`...)
	dst = append(dst, payload...)
	return append(dst, "}\n"...)
}

// encodeDone renders {"id":ID,"done":true}\n.
func encodeDone(id int64) []byte {
	return encodeAnswer(nil, id, "done", []byte("true"))
}

// encodeError renders {"id":ID,"error":{…}}\n.
func encodeError(id int64, body wire.Error) []byte {
	p, _ := json.Marshal(body)
	return encodeAnswer(nil, id, "error", p)
}
