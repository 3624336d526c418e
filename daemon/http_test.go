package daemon

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// routeModule is a module that only serves HTTP routes.
type routeModule struct {
	name   string
	routes []engines.Route
}

func (m routeModule) Name() string                              { return m.name }
func (m routeModule) Flags(*flag.FlagSet)                       {}
func (m routeModule) Engines() map[string][]journal.Engine      { return nil }
func (m routeModule) Verbs() []engines.Verb                     { return nil }
func (m routeModule) Start(context.Context, engines.Host) error { return nil }
func (m routeModule) Stop() error                               { return nil }
func (m routeModule) HTTPRoutes() []engines.Route               { return m.routes }

var _ engines.HTTPRouter = routeModule{}

func testServer(mods ...engines.Module) *Server {
	return &Server{cfg: Config{Modules: mods}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestHTTPRouteConflict: two routes that ServeMux cannot tell apart stop
// the start with an error naming the engine and the pattern.
func TestHTTPRouteConflict(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name string
		mods []engines.Module
		want string
	}{
		{"same as the daemon's", []engines.Module{routeModule{"consul", []engines.Route{{Pattern: "GET /healthz", Handler: ok}}}}, `engine consul: HTTP route: "GET /healthz"`},
		{"two engines", []engines.Module{
			routeModule{"a", []engines.Route{{Pattern: "GET /v1/kv/{key...}", Handler: ok}}},
			routeModule{"b", []engines.Route{{Pattern: "GET /v1/kv/{path...}", Handler: ok}}},
		}, `engine b: HTTP route: "GET /v1/kv/{path...}"`},
		{"bad pattern", []engines.Module{routeModule{"c", []engines.Route{{Pattern: "GET v1", Handler: ok}}}}, `engine c: HTTP route: "GET v1"`},
		{"no handler", []engines.Module{routeModule{"d", []engines.Route{{Pattern: "GET /x", Handler: nil}}}}, `engine d: HTTP route: "GET /x": no handler`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := testServer(tc.mods...).listenHTTP("127.0.0.1:0")
			if err == nil {
				h.ln.Close()
				t.Fatal("conflicting routes accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestHTTPRouteActor: a module's handler finds the caller with
// engines.ActorFrom, as a verb finds it with Request.Actor.
func TestHTTPRouteActor(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := engines.ActorFrom(r.Context())
		if !ok {
			http.Error(w, "no actor", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(a)
	})
	s := testServer(routeModule{"echo", []engines.Route{{Pattern: "GET /echo", Handler: echo}}})
	h, err := s.listenHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.http = h
	go h.serve(s.log)
	defer h.shutdown(s.log, 0)

	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + s.httpAddr() + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a journal.Actor
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /echo: %d, %v", resp.StatusCode, err)
	}
	if a.UID != os.Geteuid() || a.Via != "http" || !strings.HasPrefix(a.Addr, "127.0.0.1:") {
		t.Fatalf("actor %+v, want uid %d via http from 127.0.0.1", a, os.Geteuid())
	}
}
