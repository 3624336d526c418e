package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/daemon/authz"
	"github.com/cairnhq/cairn/daemon/ui"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// uiServer is the web dashboard (daemon/ui) over this daemon: its
// journal, its policy, its engines' explanations and its verb table.
func (s *Server) uiServer(patterns []string) *ui.Server {
	names := make([]string, 0, len(s.cfg.Modules))
	for _, m := range s.cfg.Modules {
		names = append(names, m.Name())
	}
	s.dashboard = &ui.Server{
		Journal:  s.journal,
		Log:      s.log.With("component", "ui"),
		Node:     s.node,
		Engines:  names,
		Patterns: patterns,
		Authorize: func(ctx context.Context, actor journal.Actor, verb string) error {
			return s.decide(ctx, actor, verb, nil, authz.Read)
		},
		Explain: s.explainForUI,
		Run:     s.runForUI,
	}
	return s.dashboard
}

// explainForUI is an event's summary and changes before → after, a
// before named by seq read from that event, as audit who does; unlike
// audit who, it keeps changes whose values are JSON documents (infra state
// records), which the page shows side by side.
func (s *Server) explainForUI(st *journal.Stream, ev *journal.Event) (string, []ui.Change) {
	ex, ok := engines.Explain(s.cfg.Modules, ev)
	if !ok {
		return "", nil
	}
	out := make([]ui.Change, 0, len(ex.Changes))
	for _, c := range ex.Changes {
		before := c.Before
		if before == nil && c.BeforeSeq > 0 {
			before = s.valueAt(st, c.BeforeSeq, c.Subject)
		}
		out = append(out, ui.Change{Subject: c.Subject, Before: before, After: c.After, JSON: c.JSON})
	}
	return ex.Summary, out
}

// maxUIAnswers bounds what one statement may answer over HTTP: the answer
// is gathered in memory and sent as one JSON document.
const maxUIAnswers = 10000

// uiAnswers gathers what a statement answers, for the page.
type uiAnswers struct {
	stmt  *dsl.Statement
	actor journal.Actor
	ans   ui.Answer
	n     int
}

// count refuses the answer past maxUIAnswers.
func (r *uiAnswers) count() error {
	if r.n++; r.n > maxUIAnswers {
		return wire.Errorf(wire.InvalidArgument, "%s answers more than %d rows over HTTP; narrow it (limit=, since=, where) or use the socket", r.stmt.Spec.Verb, maxUIAnswers)
	}
	return nil
}

var _ engines.Request = (*uiAnswers)(nil)

func (r *uiAnswers) Statement() *dsl.Statement { return r.stmt }
func (r *uiAnswers) Actor() journal.Actor      { return r.actor }

func (r *uiAnswers) Row(v any) error {
	if err := r.count(); err != nil {
		return err
	}
	p, err := journal.EncodeJSON(v)
	if err != nil {
		return fmt.Errorf("encode row: %w", err)
	}
	r.ans.Rows = append(r.ans.Rows, p)
	return nil
}

func (r *uiAnswers) Event(ev any) error {
	if err := r.count(); err != nil {
		return err
	}
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
	r.ans.Events = append(r.ans.Events, append([]byte(nil), p...))
	return nil
}

func (r *uiAnswers) Line(s string) error {
	if err := r.count(); err != nil {
		return err
	}
	r.ans.Lines = append(r.ans.Lines, s)
	return nil
}

// runForUI runs one statement for the page: only a verb that reads, that
// is not a stream and that the daemon runs itself, authorized as on the
// socket.
func (s *Server) runForUI(ctx context.Context, actor journal.Actor, text string) (*ui.Answer, error) {
	stmts, err := dsl.Parse(text, s.verbs)
	if err != nil {
		return nil, uiRunError(err)
	}
	if len(stmts) != 1 {
		return nil, &ui.RunError{Status: http.StatusBadRequest, Code: string(wire.InvalidArgument), Message: "give one statement"}
	}
	st := stmts[0]
	switch {
	case st.Pipe != nil:
		return nil, &ui.RunError{Status: http.StatusBadRequest, Code: string(wire.InvalidArgument), Message: "a chisel pipe does not run over HTTP; use the socket"}
	case st.Spec.Access != dsl.AccessRead:
		return nil, &ui.RunError{Status: http.StatusForbidden, Code: string(wire.PermissionDenied), Message: st.Spec.Verb + " changes cairn's state; over HTTP only verbs that read run (use the socket)"}
	case st.Spec.Stream:
		return nil, &ui.RunError{Status: http.StatusBadRequest, Code: string(wire.InvalidArgument), Message: st.Spec.Verb + " is a stream; follow events with /ui/api/live"}
	case st.Spec.Client:
		return nil, &ui.RunError{Status: http.StatusBadRequest, Code: string(wire.InvalidArgument), Message: st.Spec.Verb + " runs in the CLI, not in the daemon"}
	}
	if err := s.authorize(ctx, actor, st); err != nil {
		return nil, uiRunError(err)
	}
	r := &uiAnswers{stmt: st, actor: actor, ans: ui.Answer{Rows: []json.RawMessage{}, Events: []json.RawMessage{}, Lines: []string{}}}
	if err := s.callHandler(ctx, handlerOf(st.Spec), st.Spec.Verb, r); err != nil {
		return nil, uiRunError(err)
	}
	return &r.ans, nil
}

// uiRunError is a statement's error as the page's endpoint answers it.
func uiRunError(err error) error {
	var re *ui.RunError
	if errors.As(err, &re) {
		return re
	}
	body := errorBody(err)
	out := &ui.RunError{Status: httpStatus(body.Code), Code: string(body.Code), Message: body.Message}
	if body.Pos != nil {
		out.Line, out.Col = body.Pos.Line, body.Pos.Col
	}
	if body.Code == wire.Parse {
		out.Status = http.StatusBadRequest
	}
	if body.Code == wire.Parse && strings.Contains(body.Message, "unknown verb") {
		out.Status = http.StatusNotFound
	}
	return out
}
