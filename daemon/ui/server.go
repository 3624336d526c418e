// Package ui is the web dashboard on the daemon's HTTP listener: the page
// itself (embedded, under /ui/) and the JSON endpoints it reads, which any
// client may read too (docs/http.md). Everything it serves passes the
// daemon's access rule: the caller found through the kernel, asked of the
// daemon's policy as the socket's verbs are.
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

//go:embed static
var static embed.FS

// Change is one subject's change an event records, before → after, as
// `audit who` computes it (a before named by seq already resolved).
type Change struct {
	Subject string  `json:"subject"`
	Before  *string `json:"before"`
	After   *string `json:"after"`
	// JSON says before and after are JSON documents (an infra state
	// record), not a key's plain value.
	JSON bool `json:"json,omitempty"`
}

// Answer is what a read-only statement answered: its rows, events and
// lines, in order within each.
type Answer struct {
	Rows   []json.RawMessage `json:"rows"`
	Events []json.RawMessage `json:"events"`
	Lines  []string          `json:"lines"`
}

// Server serves the dashboard and its endpoints. The daemon fills it in.
type Server struct {
	Journal *journal.Journal
	Log     *slog.Logger
	Node    string
	// Engines are the names of the engines linked into the daemon, so a
	// page for one that is absent says so.
	Engines []string
	// Patterns are the routes the listener serves, every module's: the
	// page learns from them whether Prometheus's API is there.
	Patterns []string
	// Authorize asks the daemon's policy whether actor may run verb (a
	// read: "events" for the journal's endpoints), journaling a denial.
	Authorize func(ctx context.Context, actor journal.Actor, verb string) error
	// Explain returns an event's summary and its changes before → after.
	Explain func(st *journal.Stream, ev *journal.Event) (string, []Change)
	// Run runs one read-only statement of the command language for actor,
	// authorized as on the socket.
	Run func(ctx context.Context, actor journal.Actor, stmt string) (*Answer, error)

	stopOnce, closeOnce sync.Once
	stopped             chan struct{}
}

// Shutdown ends the live streams: an HTTP server's Shutdown waits for
// requests to finish, and a stream never would (register it with
// http.Server.RegisterOnShutdown).
func (s *Server) Shutdown() {
	s.closeOnce.Do(func() { close(s.stopping()) })
}

func (s *Server) stopping() chan struct{} {
	s.stopOnce.Do(func() { s.stopped = make(chan struct{}) })
	return s.stopped
}

// Routes are the dashboard's routes on the daemon's listener.
func (s *Server) Routes() []engines.Route {
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return []engines.Route{
		{Pattern: "GET /{$}", Handler: http.RedirectHandler("/ui/", http.StatusFound)},
		{Pattern: "GET /ui/", Handler: s.read("status", noCache(files))},
		{Pattern: "GET /ui/api/info", Handler: s.read("status", http.HandlerFunc(s.serveInfo))},
		{Pattern: "GET /ui/api/filter", Handler: s.read("events", http.HandlerFunc(serveFilter))},
		{Pattern: "GET /ui/api/timeline", Handler: s.read("events", http.HandlerFunc(s.serveTimeline))},
		{Pattern: "GET /ui/api/event", Handler: s.read("events", http.HandlerFunc(s.serveEvent))},
		{Pattern: "GET /ui/api/verify", Handler: s.read("journal verify", http.HandlerFunc(s.serveVerify))},
		{Pattern: "GET /ui/api/series", Handler: s.read("events", http.HandlerFunc(s.serveSeries))},
		{Pattern: "GET /ui/api/live", Handler: s.read("tail", http.HandlerFunc(s.serveLive))},
		{Pattern: "GET /ui/api/run", Handler: guardHost(http.HandlerFunc(s.serveRun))},
		{Pattern: "GET /ui/api/infra/graph.svg", Handler: guardHost(http.HandlerFunc(s.serveInfraGraph))},
	}
}

// noCache makes the browser revalidate the page's files, so a new daemon's
// page is never mixed with an old one's modules.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// read lets a request through when the caller may run verb.
func (s *Server) read(verb string, h http.Handler) http.Handler {
	return guardHost(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, ok := engines.ActorFrom(r.Context())
		if !ok {
			writeError(w, http.StatusForbidden, errors.New("the caller of this connection is unknown"))
			return
		}
		if s.Authorize != nil {
			if err := s.Authorize(r.Context(), actor, verb); err != nil {
				writeError(w, http.StatusForbidden, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
}

// guardHost refuses a request from loopback whose Host is a name other
// than localhost: a page of another site that rebinds its name to
// 127.0.0.1 would otherwise read the dashboard with the uid of the
// browser's user (DNS rebinding). A browser on this host asks for
// 127.0.0.1, [::1] or localhost; a caller from elsewhere presents the
// listener's token instead.
func guardHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopback(r.RemoteAddr) && !localHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q: the dashboard answers a local caller only at an address (127.0.0.1, [::1]) or localhost, so that another site's page cannot reach it through its own name", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// localHost reports whether a Host header names an IP address or
// localhost.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.ParseIP(host) != nil || strings.EqualFold(host, "localhost")
}

// apiError is an endpoint's error as JSON; a CEL filter that does not
// compile carries its place (1-based line and column within the filter).
type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
	Line  int    `json:"line,omitempty"`
	Col   int    `json:"col,omitempty"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	body := apiError{Error: err.Error()}
	var pe *paramError
	if errors.As(err, &pe) {
		body.Param, body.Error = pe.param, pe.msg
		var ce *filter.CompileError
		if errors.As(pe.err, &ce) {
			body.Line, body.Col, body.Error = ce.Line, ce.Col, pe.param+": "+ce.Msg
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// paramError is a bad query parameter, named.
type paramError struct {
	param, msg string
	err        error
}

func (e *paramError) Error() string { return e.msg }
func (e *paramError) Unwrap() error { return e.err }

func badParam(param string, err error) error {
	return &paramError{param: param, msg: fmt.Sprintf("%s: %v", param, err), err: err}
}

// whereParam compiles the where= parameter, nil when absent.
func whereParam(r *http.Request) (*filter.Filter, error) {
	src := strings.TrimSpace(r.URL.Query().Get("where"))
	if src == "" {
		return nil, nil
	}
	f, err := filter.Compile(src)
	if err != nil {
		return nil, badParam("where", err)
	}
	return f, nil
}

// filterCheck is a CEL filter's verdict.
type filterCheck struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Line  int    `json:"line,omitempty"`
	Col   int    `json:"col,omitempty"`
}

// serveFilter compiles where= and answers whether it compiles, and if not
// where and why, always with 200: the page checks a filter as it is typed
// or before it reads with it, and a refusal is its answer, not a failure.
func serveFilter(w http.ResponseWriter, r *http.Request) {
	_, err := whereParam(r)
	if err == nil {
		writeJSON(w, filterCheck{OK: true})
		return
	}
	c := filterCheck{Error: err.Error()}
	var ce *filter.CompileError
	if errors.As(err, &ce) {
		c.Line, c.Col, c.Error = ce.Line, ce.Col, "where: "+ce.Msg
	}
	writeJSON(w, c)
}

// timeParam reads a time parameter: unix milliseconds, RFC 3339, or a
// duration meaning that long before now ("1h"). def when absent.
func timeParam(r *http.Request, name string, now, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, badParam(name, fmt.Errorf("%q is not a time: give unix milliseconds, RFC 3339 (2026-12-05T10:00:00Z) or a duration ago (15m)", v))
}

// intParam reads a non-negative integer parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, fmt.Errorf("%q: want an integer from %d to %d", v, lo, hi))
	}
	return n, nil
}

// streamsParam reads streams= (comma-separated; empty or * for all).
func (s *Server) streamsParam(r *http.Request) ([]*journal.Stream, error) {
	v := r.URL.Query().Get("streams")
	if v == "" || v == "*" {
		var out []*journal.Stream
		for _, n := range s.Journal.Names() {
			out = append(out, s.Journal.Stream(n))
		}
		return out, nil
	}
	var out []*journal.Stream
	for _, n := range strings.Split(v, ",") {
		st := s.Journal.Stream(strings.TrimSpace(n))
		if st == nil {
			return nil, badParam("streams", fmt.Errorf("unknown stream %q; streams are %s", n, strings.Join(s.Journal.Names(), ", ")))
		}
		out = append(out, st)
	}
	return out, nil
}

// info is what the page learns first: the node, its streams and engines.
type info struct {
	Node    string       `json:"node"`
	Now     int64        `json:"now"` // unix ms
	Engines []string     `json:"engines"`
	Streams []streamInfo `json:"streams"`
	// Prometheus says the listener serves Prometheus's HTTP API
	// (/api/v1/query_range: the metrics engine is linked).
	Prometheus bool `json:"prometheus"`
}

type streamInfo struct {
	Name  string `json:"name"`
	Class string `json:"class"` // "audit-like" (changes) or "capture-like" (observations)
	First int64  `json:"first"`
	Last  int64  `json:"last"`
}

func (s *Server) serveInfo(w http.ResponseWriter, r *http.Request) {
	in := info{Node: s.Node, Now: time.Now().UnixMilli(), Engines: s.Engines}
	for _, p := range s.Patterns {
		_, path, _ := strings.Cut(p, " ")
		if strings.HasPrefix(p, "/api/v1/") || strings.HasPrefix(path, "/api/v1/") {
			in.Prometheus = true
		}
	}
	for _, n := range s.Journal.Names() {
		st := s.Journal.Stream(n)
		in.Streams = append(in.Streams, streamInfo{Name: n, Class: st.Class().String(), First: st.FirstSeq(), Last: st.DurableSeq()})
	}
	writeJSON(w, in)
}
