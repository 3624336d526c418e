package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnhq/cairn/engines"
)

// httpListener is the daemon's one HTTP server (--http): the daemon's own
// routes and every module's, behind one middleware that finds who is
// calling.
type httpListener struct {
	srv  *http.Server
	ln   net.Listener
	addr string // the bound address, host:port
	done chan struct{}
}

// listenHTTP binds addr and builds the server; nothing is served until
// serve. A route that conflicts with another is an error naming its owner.
func (s *Server) listenHTTP(addr string) (*httpListener, error) {
	mux := http.NewServeMux()
	// Each module is asked for its routes once; the dashboard learns
	// their patterns (whether Prometheus's API is served).
	type moduleRoute struct {
		module string
		engines.Route
	}
	var modRoutes []moduleRoute
	var patterns []string
	for _, m := range s.cfg.Modules {
		hr, ok := m.(engines.HTTPRouter)
		if !ok {
			continue
		}
		for _, r := range hr.HTTPRoutes() {
			modRoutes = append(modRoutes, moduleRoute{m.Name(), r})
			patterns = append(patterns, r.Pattern)
		}
	}
	for _, r := range s.httpRoutes(patterns) {
		if err := handle(mux, r.Pattern, r.Handler); err != nil {
			return nil, fmt.Errorf("daemon HTTP route: %w", err)
		}
	}
	for _, r := range modRoutes {
		if err := handle(mux, r.Pattern, r.Handler); err != nil {
			return nil, fmt.Errorf("engine %s: HTTP route: %w", r.module, err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w (choose another address with --http ADDR, or --http off)", addr, err)
	}
	h := &httpListener{ln: ln, addr: ln.Addr().String(), done: make(chan struct{})}
	var token string
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		// Bound beyond loopback: callers from elsewhere must present the
		// token (Consul's X-Consul-Token), as DESIGN.md's listeners do.
		if token, err = tokenFile(filepath.Join(s.cfg.DataDir, "http.token"), "HTTP"); err != nil {
			ln.Close()
			return nil, fmt.Errorf("--http %s: %w", addr, err)
		}
	}
	h.srv = &http.Server{
		Handler:           withToken(mux, token),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn),
		// The caller is looked up once per connection, as soon as it is
		// accepted: the later, the likelier the caller has closed its
		// socket and the kernel no longer knows its owner. It goes into the
		// connection's context, from which every request's derives, where
		// engines.ActorFrom finds it (no copy of each request to add it).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return engines.WithActor(ctx, httpActor(c.LocalAddr(), c.RemoteAddr()))
		},
	}
	if s.dashboard != nil {
		// Its live streams end when the server shuts down, rather than
		// holding the stop for the whole drain timeout.
		h.srv.RegisterOnShutdown(s.dashboard.Shutdown)
	}
	return h, nil
}

// handle registers a route, turning ServeMux's panic on a bad or
// conflicting pattern into an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%q: %v", pattern, p)
		}
	}()
	if h == nil {
		return fmt.Errorf("%q: no handler", pattern)
	}
	mux.Handle(pattern, h)
	return nil
}

// withToken guards a listener bound beyond loopback (a token): a caller
// not on loopback must present it in X-Consul-Token (or ?token=, or
// Authorization: Bearer, as Consul accepts) or is refused with Consul's
// 403 "ACL not found". The caller itself is in every request's context
// already (ConnContext).
func withToken(next http.Handler, token string) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackAddr(r.RemoteAddr) {
			got := r.Header.Get("X-Consul-Token")
			if got == "" {
				got = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			}
			if got == "" {
				got = r.URL.Query().Get("token")
			}
			if !equalSecret(got, token) {
				http.Error(w, "ACL not found", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackAddr reports whether a host:port address is on loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serve answers requests until shutdown.
func (h *httpListener) serve(log *slog.Logger) {
	defer close(h.done)
	if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("HTTP listener stopped", "addr", h.addr, "err", err)
	}
}

// shutdown stops accepting, lets the requests in flight finish for at most
// timeout, then closes their connections.
func (h *httpListener) shutdown(log *slog.Logger, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		log.Warn("HTTP requests still running after the drain timeout; closing their connections", "timeout", timeout)
		h.srv.Close()
	}
	<-h.done
}

func (s *Server) httpAddr() string {
	if s.http == nil {
		return "off"
	}
	return s.http.addr
}
