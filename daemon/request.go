package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// Handler runs one bound statement, writing its answers through r. It
// returns nil for done or an error, which becomes the request's error answer.
type Handler func(ctx context.Context, r *Request) error

// Verb is one entry of the daemon's verb table: the DSL spec and its handler.
type Verb struct {
	dsl.Spec
	Run Handler
}

// Request is one statement being served, with the identity of its caller.
type Request struct {
	ID    int64
	Stmt  *dsl.Statement
	Actor journal.Actor
	conn  *conn
	buf   []byte
}

// errClientGone reports that the client stopped listening.
var errClientGone = errors.New("client connection closed")

func (r *Request) emit(kind string, payload []byte) error {
	r.buf = encodeAnswer(r.buf[:0], r.ID, kind, payload)
	line := make([]byte, len(r.buf))
	copy(line, r.buf)
	if !r.conn.send(line) {
		return errClientGone
	}
	return nil
}

// Row answers one result row; v is encoded as JSON.
func (r *Request) Row(v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode row: %w", err)
	}
	return r.emit(kindRow, p)
}

// Event answers one event.
func (r *Request) Event(ev *journal.Event) error {
	p, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s/%d: %w", ev.Stream, ev.Seq, err)
	}
	return r.emit(kindEvent, p)
}

// Line answers one line of text.
func (r *Request) Line(s string) error {
	p, _ := json.Marshal(s)
	return r.emit(kindLine, p)
}

// Where compiles the statement's where clause, or returns nil when it has
// none. Compile errors carry their position in the statement.
func (r *Request) Where() (*filter.Filter, error) {
	if r.Stmt.Where == nil {
		return nil, nil
	}
	f, err := filter.Compile(r.Stmt.Where.Text)
	if err != nil {
		var ce *filter.CompileError
		if errors.As(err, &ce) {
			return nil, &posError{
				code: "invalid_argument",
				pos:  offsetPos(r.Stmt.Where.Pos, ce.Line, ce.Col),
				msg:  "where: " + ce.Msg,
			}
		}
		return nil, journal.Errorf("invalid_argument", "where: %v", err)
	}
	return f, nil
}

// offsetPos maps a 1-based line:col inside a word onto the statement.
func offsetPos(start dsl.Pos, line, col int) dsl.Pos {
	if line <= 1 {
		return dsl.Pos{Line: start.Line, Col: start.Col + col - 1}
	}
	return dsl.Pos{Line: start.Line + line - 1, Col: col}
}

// posError is an error tied to a place in the statement.
type posError struct {
	code string
	pos  dsl.Pos
	msg  string
}

func (e *posError) Error() string { return fmt.Sprintf("%s: %s", e.pos, e.msg) }

// errorBody turns a handler or parse error into the wire's error object.
func errorBody(err error) wireErrBody {
	var de *dsl.Error
	if errors.As(err, &de) {
		return wireErrBody{Code: "parse", Message: de.Error(), Pos: &wirePos{Line: de.Pos.Line, Col: de.Pos.Col}}
	}
	var pe *posError
	if errors.As(err, &pe) {
		return wireErrBody{Code: pe.code, Message: pe.Error(), Pos: &wirePos{Line: pe.pos.Line, Col: pe.pos.Col}}
	}
	return wireErrBody{Code: journal.Code(err), Message: err.Error()}
}
