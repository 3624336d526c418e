package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cairnhq/cairn/client/wire"
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
	live  bool   // a stream: every answer goes out at once…
	burst bool   // …unless the handler gathers a burst and calls flush itself
	out   []byte // answers not sent yet
}

// flushAt is how many answer bytes a non-streaming request gathers before
// sending them; the rest go out with its done, in one write.
const flushAt = 64 << 10

var (
	_ engines.Request         = (*request)(nil)
	_ engines.ProcessAnswerer = (*request)(nil)
)

// errClientGone reports that the client stopped listening.
var errClientGone = errors.New("client connection closed")

func (r *request) Statement() *dsl.Statement { return r.stmt }
func (r *request) Actor() journal.Actor      { return r.actor }

func (r *request) emit(kind string, payload []byte) error {
	r.out = encodeAnswer(r.out, r.id, kind, payload)
	if (r.live && !r.burst) || len(r.out) >= flushAt {
		return r.flush(nil)
	}
	return nil
}

// flush sends the gathered answers followed by last (done or an error).
func (r *request) flush(last []byte) error {
	out := append(r.out, last...)
	r.out = nil
	if len(out) > 0 && !r.conn.send(out) {
		return errClientGone
	}
	return nil
}

// Flush sends the answers gathered so far (engines.Flusher).
func (r *request) Flush() error { return r.flush(nil) }

// Row answers one result row; v is encoded as JSON.
func (r *request) Row(v any) error {
	p, err := journal.EncodeJSON(v)
	if err != nil {
		return fmt.Errorf("encode row: %w", err)
	}
	return r.emit(wire.KindRow, p)
}

// Event answers one event: a stored *journal.Raw (its JSON is shared with
// every other reader of a live event), a *journal.Event, or any JSON value.
func (r *request) Event(ev any) error {
	var p []byte
	var err error
	switch ev := ev.(type) {
	case *journal.Raw:
		p, err = ev.JSON()
	case json.Marshaler:
		p, err = ev.MarshalJSON()
	default:
		p, err = journal.EncodeJSON(ev)
	}
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return r.emit(wire.KindEvent, p)
}

// Line answers one line of text.
func (r *request) Line(s string) error {
	p, _ := json.Marshal(s)
	return r.emit(wire.KindLine, p)
}

// Output answers a piece of a process's output (engines.ProcessAnswerer).
func (r *request) Output(fd int, data string) error {
	p, err := json.Marshal(wire.Output{FD: fd, Data: data})
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return r.emit(wire.KindOutput, p)
}

// Exit answers the exit status of the process the statement ran.
func (r *request) Exit(code int) error {
	return r.emit(wire.KindExit, strconv.AppendInt(nil, int64(code), 10))
}

// errorBody turns a handler or parse error into the wire's error object.
func errorBody(err error) wire.Error {
	var de *dsl.Error
	if errors.As(err, &de) {
		return wire.Error{Code: wire.Parse, Message: de.Error(), Pos: &wire.Pos{Line: de.Pos.Line, Col: de.Pos.Col}}
	}
	var pe *engines.PosError
	if errors.As(err, &pe) {
		return wire.Error{Code: pe.Code, Message: pe.Error(), Pos: &wire.Pos{Line: pe.Pos.Line, Col: pe.Pos.Col}}
	}
	msg := err.Error()
	if hint := engines.ErrorHint(err); hint != "" {
		msg += ": " + hint
	}
	return wire.Error{Code: engines.ErrorCode(err), Message: msg}
}
