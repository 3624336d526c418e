package daemon

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// Verb is one entry of the daemon's verb table.
type Verb = engines.Verb

// request is one statement being served, with the identity of its caller;
// it is the engines.Request handlers see.
type request struct {
	id    int64
	stmt  *dsl.Statement
	actor journal.Actor
	conn  *conn
	buf   []byte
}

var _ engines.Request = (*request)(nil)

// errClientGone reports that the client stopped listening.
var errClientGone = errors.New("client connection closed")

func (r *request) Statement() *dsl.Statement { return r.stmt }
func (r *request) Actor() journal.Actor      { return r.actor }

func (r *request) emit(kind string, payload []byte) error {
	r.buf = encodeAnswer(r.buf[:0], r.id, kind, payload)
	line := make([]byte, len(r.buf))
	copy(line, r.buf)
	if !r.conn.send(line) {
		return errClientGone
	}
	return nil
}

// Row answers one result row; v is encoded as JSON.
func (r *request) Row(v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode row: %w", err)
	}
	return r.emit(kindRow, p)
}

// Event answers one event.
func (r *request) Event(ev any) error {
	p, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return r.emit(kindEvent, p)
}

// Line answers one line of text.
func (r *request) Line(s string) error {
	p, _ := json.Marshal(s)
	return r.emit(kindLine, p)
}

// errorBody turns a handler or parse error into the wire's error object.
func errorBody(err error) wireErrBody {
	var de *dsl.Error
	if errors.As(err, &de) {
		return wireErrBody{Code: "parse", Message: de.Error(), Pos: &wirePos{Line: de.Pos.Line, Col: de.Pos.Col}}
	}
	var pe *engines.PosError
	if errors.As(err, &pe) {
		return wireErrBody{Code: pe.Code, Message: pe.Error(), Pos: &wirePos{Line: pe.Pos.Line, Col: pe.Pos.Col}}
	}
	return wireErrBody{Code: journal.Code(err), Message: err.Error()}
}
