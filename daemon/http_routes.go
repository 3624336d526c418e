package daemon

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/daemon/authz"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// maxEventPayload bounds a user event's payload. Consul's gossip layer
// allows 512 bytes by default; cairn keeps events in its journal and allows
// more, but an event is a signal, not a file.
const maxEventPayload = 64 << 10

// kindEventFire is the kind of a user event fired over HTTP.
const kindEventFire = "event.fire"

// httpRoutes are the routes the daemon itself serves, the dashboard's
// among them; patterns are the modules' (engines.HTTPRouter).
func (s *Server) httpRoutes(patterns []string) []engines.Route {
	return append([]engines.Route{
		{Pattern: "GET /healthz", Handler: http.HandlerFunc(s.serveHealthz)},
		{Pattern: "PUT /v1/event/fire/{name}", Handler: http.HandlerFunc(s.serveEventFire)},
		{Pattern: "GET /v1/status/leader", Handler: http.HandlerFunc(s.serveStatusLeader)},
	}, s.uiServer(patterns).Routes()...)
}

// serveHealthz answers that the daemon serves.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{"status": "ok"})
}

// serveStatusLeader answers Consul's /v1/status/leader: the address of the
// cluster's leader as a JSON string. A single daemon leads itself.
func (s *Server) serveStatusLeader(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.httpAddr())
}

// userEvent is Consul's api.UserEvent, the answer of /v1/event/fire.
type userEvent struct {
	ID            string
	Name          string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}

// serveEventFire answers Consul's PUT /v1/event/fire/NAME: it records one
// event.fire event in the audit stream, its actor the caller, and answers
// the event with its seq as the Lamport time.
func (s *Server) serveEventFire(w http.ResponseWriter, r *http.Request) {
	actor, _ := engines.ActorFrom(r.Context())
	if err := s.decide(r.Context(), actor, "event fire", map[string]string{"NAME": r.PathValue("name")}, authz.Write); err != nil {
		s.httpError(w, err)
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventPayload))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, fmt.Sprintf("event payload exceeds %d bytes", maxEventPayload), http.StatusRequestEntityTooLarge)
		return
	} else if err != nil {
		http.Error(w, "read event payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	ev := userEvent{
		ID:            newUUID(),
		Name:          r.PathValue("name"),
		NodeFilter:    q.Get("node"),
		ServiceFilter: q.Get("service"),
		TagFilter:     q.Get("tag"),
		Version:       1,
	}
	data := map[string]any{"id": ev.ID}
	if len(payload) > 0 {
		ev.Payload = payload
		if utf8.Valid(payload) {
			data["payload"] = string(payload)
		} else {
			data["payload_base64"] = base64.StdEncoding.EncodeToString(payload)
		}
	}
	for k, v := range map[string]string{"node_filter": ev.NodeFilter, "service_filter": ev.ServiceFilter, "tag_filter": ev.TagFilter} {
		if v != "" {
			data[k] = v
		}
	}
	c, err := s.journal.Stream(journal.Audit).Append(r.Context(), &journal.Body{
		Kind: kindEventFire, Subject: ev.Name, Actor: actor, Data: data,
	})
	if err != nil {
		s.httpError(w, err)
		return
	}
	ev.LTime = uint64(c[0].Seq)
	writeJSON(w, ev)
}

// writeJSON answers v as JSON with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// httpError answers err as plain text (as Consul does) with the HTTP
// status of its code.
func (s *Server) httpError(w http.ResponseWriter, err error) {
	body := errorBody(err)
	if body.Code == wire.Internal {
		s.log.Error("HTTP request failed", "err", err)
	}
	http.Error(w, body.Message, httpStatus(body.Code))
}

// httpStatus maps an error code to the HTTP status grpc-gateway gives it.
func httpStatus(c wire.Code) int {
	switch c {
	case wire.InvalidArgument, wire.Parse, wire.FailedPrecondition, wire.OutOfRange:
		return http.StatusBadRequest
	case wire.Canceled:
		return 499 // nginx's "client closed request", as grpc-gateway
	case wire.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case wire.NotFound:
		return http.StatusNotFound
	case wire.AlreadyExists, wire.Aborted:
		return http.StatusConflict
	case wire.PermissionDenied:
		return http.StatusForbidden
	case wire.Unauthenticated:
		return http.StatusUnauthorized
	case wire.ResourceExhausted:
		return http.StatusTooManyRequests
	case wire.Unimplemented:
		return http.StatusNotImplemented
	case wire.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// newUUID returns a random (version 4) UUID, as Consul's event IDs are.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
