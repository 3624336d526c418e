package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) scrapeVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "metrics scrape add",
			Access:  dsl.AccessWrite,
			Summary: "scrape a Prometheus target into the metrics TSDB",
			Help: "metrics scrape add NAME url=http://HOST:PORT/metrics [interval=15s] [timeout=10s] [body-limit=10MiB] scrapes the\n" +
				"target as Prometheus does (job=NAME), recording up and scrape_duration_seconds; a target slower than\n" +
				"timeout= or answering more than body-limit= is up 0. NAME already added is replaced.\n\n" +
				"  metrics scrape add node url=http://127.0.0.1:9100/metrics interval=15s",
			Args: []dsl.Arg{{Name: "NAME", Required: true, Help: "the job name"}},
			Options: []dsl.Option{
				{Name: "url", Help: "the target's URL (required)"},
				{Name: "interval", Kind: dsl.Duration, Help: "how often (default 1m, Prometheus's)"},
				{Name: "timeout", Kind: dsl.Duration, Help: "how long a scrape may take (default 10s, at most interval)"},
				{Name: "body-limit", Meta: "SIZE", Help: "the largest answer accepted, such as 10MiB (default 10MiB)"},
			},
		}, Run: m.runScrapeAdd},
		{Spec: dsl.Spec{
			Verb:    "metrics scrape list",
			Access:  dsl.AccessRead,
			Summary: "list the scrape targets and their health",
			Help:    "metrics scrape list answers a row per target: its settings, health (up, down, unknown), last error and\nlast scrape.",
		}, Run: m.runScrapeList},
		{Spec: dsl.Spec{
			Verb:    "metrics scrape rm",
			Access:  dsl.AccessWrite,
			Summary: "stop scraping a target",
			Args:    []dsl.Arg{{Name: "NAME", Required: true}},
		}, Run: m.runScrapeRm},
	}
}

// recordScrape appends a scrape target event, folds it and applies the
// targets to the scrape manager.
func (m *module) recordScrape(ctx context.Context, actor journal.Actor, kind, subject string, data map[string]any) error {
	m.recordMu.Lock()
	defer m.recordMu.Unlock()
	if _, err := m.audit.Append(ctx, &journal.Body{Kind: kind, Subject: subject, Node: m.node, Actor: actor, Data: data}); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	m.scrapes.fold(kind, data)
	if err := m.scraper.apply(m.scrapes.list()); err != nil {
		return wire.Errorf(wire.Internal, "%s recorded, but the scrape manager refused it: %v", kind, err)
	}
	return nil
}

func (m *module) runScrapeAdd(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	t := ScrapeTarget{Name: st.Args["NAME"].Text}
	if t.Name == internalJob {
		return engines.Errorf(wire.InvalidArgument, st.Args["NAME"], "job %q is cairn's own collection; choose another name", t.Name)
	}
	w, ok := st.Opt("url")
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "metrics scrape add %s: give url=http://HOST:PORT/metrics", t.Name)
	}
	t.URL = w.Text
	for _, o := range []struct {
		name string
		dst  *string
	}{{"interval", &t.Interval}, {"timeout", &t.Timeout}} {
		if ow, ok := st.Opt(o.name); ok {
			d, err := ow.Duration()
			if err != nil || d <= 0 {
				return engines.Errorf(wire.InvalidArgument, ow, "%s=: a positive duration, such as 15s", o.name)
			}
			*o.dst = d.String()
		}
	}
	if ow, ok := st.Opt("body-limit"); ok {
		t.BodyLimit = ow.Text
	}
	t, err := checkScrapeTarget(t)
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "metrics scrape add %s: %v", t.Name, err)
	}
	var data map[string]any
	b, _ := json.Marshal(t)
	_ = json.Unmarshal(b, &data)
	if err := m.recordScrape(ctx, r.Actor(), KindScrapeAdd, t.Name, map[string]any{"name": t.Name, "target": data}); err != nil {
		return err
	}
	return r.Row(t)
}

func (m *module) runScrapeRm(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["NAME"]
	found := false
	for _, t := range m.scrapes.list() {
		found = found || t.Name == w.Text
	}
	if !found {
		return engines.Errorf(wire.NotFound, w, "no scrape target %q (metrics scrape list)", w.Text)
	}
	return m.recordScrape(ctx, r.Actor(), KindScrapeRm, w.Text, map[string]any{"name": w.Text})
}

// ScrapeRow is a target as metrics scrape list answers it.
type ScrapeRow struct {
	ScrapeTarget
	Health       string     `json:"health"`
	LastError    string     `json:"last_error,omitempty"`
	LastScrape   *time.Time `json:"last_scrape,omitempty"`
	LastDuration float64    `json:"last_duration_seconds,omitempty"`
}

func (m *module) runScrapeList(ctx context.Context, r engines.Request) error {
	active := m.scraper.mgr.TargetsActive()
	for _, t := range m.scrapes.list() {
		row := ScrapeRow{ScrapeTarget: t, Health: "unknown"}
		if ts := active[t.Name]; len(ts) > 0 {
			row.Health = string(ts[0].Health())
			if err := ts[0].LastError(); err != nil {
				row.LastError = err.Error()
			}
			if ls := ts[0].LastScrape(); !ls.IsZero() {
				row.LastScrape = &ls
			}
			row.LastDuration = ts[0].LastScrapeDuration().Seconds()
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}
