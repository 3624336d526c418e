package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// The audit kinds of routes and outputs.
const (
	kindRouteAdd      = "logs.route.add"
	kindRouteRm       = "logs.route.rm"
	kindOutputFail    = "logs.output.fail"
	kindOutputRecover = "logs.output.recover"
)

// routeConfig is one `logs route add`, as its event stores it.
type routeConfig struct {
	Name  string            `json:"name"`
	Match string            `json:"match"`
	Where string            `json:"where,omitempty"`
	To    string            `json:"to"`
	Set   map[string]string `json:"set,omitempty"`
	// From is the logs stream's seq when the route was added: its output
	// starts after it.
	From int64 `json:"from"`
}

// route is a route ready to match.
type route struct {
	cfg     routeConfig
	pattern *TagPattern
	where   *filter.Filter
	out     *output // nil for to=journal
}

// routeTable holds the routes in the order they were added: the first
// whose pattern matches a record's tag takes it, as Fluentd's <match>.
type routeTable struct {
	mu     sync.RWMutex
	routes []*route
}

func compileRoute(cfg routeConfig) (*route, error) {
	p, err := ParseTagPattern(cfg.Match)
	if err != nil {
		return nil, err
	}
	r := &route{cfg: cfg, pattern: p}
	if cfg.Where != "" {
		if r.where, err = filter.Compile(cfg.Where); err != nil {
			return nil, fmt.Errorf("where: %w", err)
		}
	}
	if _, _, err := parseTo(cfg.To); err != nil {
		return nil, err
	}
	return r, nil
}

// parseTo reads to=: journal, file:PATH, forward:HOST:PORT.
func parseTo(to string) (kind, target string, err error) {
	switch {
	case to == "" || to == "journal":
		return "journal", "", nil
	case strings.HasPrefix(to, "file:"):
		p := strings.TrimPrefix(to, "file:")
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("to=%s: give an absolute path", to)
		}
		return "file", p, nil
	case strings.HasPrefix(to, "forward:"):
		addr := strings.TrimPrefix(to, "forward:")
		if !strings.Contains(addr, ":") {
			return "", "", fmt.Errorf("to=%s: give HOST:PORT", to)
		}
		return "forward", addr, nil
	case to == "nats":
		return "", "", fmt.Errorf("to=nats is not an output of its own: every stored record is already published on NATS as cairn.logs.logs.record (the daemon's bus); route to=journal and subscribe there")
	}
	return "", "", fmt.Errorf("to=%s: give journal, file:PATH or forward:HOST:PORT", to)
}

// apply routes recs: each goes through the first route matching its tag;
// a record its where refuses is dropped (counted), record.K=V fields are
// set, and the record is marked with the route's name, which its output
// follows in the stream. Records no route matches pass unchanged.
func (t *routeTable) apply(recs []Record, st *stats, input string) []Record {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.routes) == 0 {
		return recs
	}
	out := recs[:0]
	for _, rec := range recs {
		var r *route
		for _, c := range t.routes {
			if c.pattern.Match(rec.Tag) {
				r = c
				break
			}
		}
		if r == nil {
			out = append(out, rec)
			continue
		}
		if r.where == nil && len(r.cfg.Set) == 0 {
			rec.route = r.cfg.Name
			out = append(out, rec)
			continue
		}
		fields, err := rec.fields()
		if err != nil {
			st.add(input, "dropped_by_route", 1) // a record the transcoder wrote always decodes
			continue
		}
		if r.where != nil {
			ev := &journal.Event{Stream: Stream, Body: journal.Body{Kind: RecordKind, Subject: rec.Tag,
				Data: map[string]any{"tag": rec.Tag, "time": rec.Time.UnixNano(), "record": fields}}}
			if !r.where.MatchEvent(ev) {
				st.add(input, "dropped_by_route", 1)
				continue
			}
		}
		for k, v := range r.cfg.Set {
			fields[k] = v
		}
		if len(r.cfg.Set) > 0 {
			rec.raw = nil // Fields are the record now
		}
		rec.route = r.cfg.Name
		out = append(out, rec)
	}
	return out
}

func (t *routeTable) add(r *route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.routes = append(t.routes, r)
}

func (t *routeTable) remove(name string) *route {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.routes {
		if r.cfg.Name == name {
			t.routes = append(t.routes[:i:i], t.routes[i+1:]...)
			return r
		}
	}
	return nil
}

func (t *routeTable) get(name string) *route {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range t.routes {
		if r.cfg.Name == name {
			return r
		}
	}
	return nil
}

func (t *routeTable) list() []*route {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]*route(nil), t.routes...)
}

// loadRoutes folds logs.route.add and logs.route.rm from the audit stream
// and starts each route's output.
func (m *module) loadRoutes(ctx context.Context) error {
	var cfgs []routeConfig
	it := m.audit.Scan(journal.Query{Kind: "logs.route.*"})
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			// A damaged event (journal verify names it) loses its own
			// change only.
			m.log.Error("logs: a stored route change cannot be read; it is skipped", "seq", it.Raw().Seq, "err", err)
			continue
		}
		b, _ := json.Marshal(ev.Data)
		var cfg routeConfig
		if err := json.Unmarshal(b, &cfg); err != nil || cfg.Name == "" {
			continue
		}
		for i, c := range cfgs {
			if c.Name == cfg.Name {
				cfgs = append(cfgs[:i:i], cfgs[i+1:]...)
				break
			}
		}
		if ev.Kind == kindRouteAdd {
			cfgs = append(cfgs, cfg)
		}
	}
	err := it.Err()
	it.Close()
	if err != nil {
		return err
	}
	for _, cfg := range cfgs {
		r, err := compileRoute(cfg)
		if err != nil {
			m.log.Warn("logs: a stored route no longer compiles", "route", cfg.Name, "err", err)
			continue
		}
		m.startRoute(ctx, r)
	}
	return nil
}

// startRoute adds r to the table and starts its output.
func (m *module) startRoute(ctx context.Context, r *route) {
	kind, target, _ := parseTo(r.cfg.To)
	if kind != "journal" {
		r.out = newOutput(m, r.cfg, kind, target)
		octx, cancel := context.WithCancel(ctx)
		r.out.cancel = cancel
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			r.out.run(octx)
		}()
	}
	m.routes.add(r)
}
