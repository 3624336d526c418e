package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/scrape"
	"go.yaml.in/yaml/v3"

	"github.com/cairnhq/cairn/journal"
)

// Scrape targets: Prometheus's own scrape manager scrapes them into the
// TSDB, with up, scrape_duration_seconds, scrape_samples_scraped as
// Prometheus records them, its timeout and its body size limit. The
// targets are audit events (metrics.scrape.add, metrics.scrape.rm) folded
// into memory; the manager's configuration is generated from them.

// The kinds of the scrape target events.
const (
	KindScrapeAdd = "metrics.scrape.add"
	KindScrapeRm  = "metrics.scrape.rm"
)

// ScrapeTarget is one target as metrics scrape add defines it.
type ScrapeTarget struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Interval  string `json:"interval"`
	Timeout   string `json:"timeout"`
	BodyLimit string `json:"body_limit"` // Prometheus's units: 10MB, 512KiB…
}

// defaultBodyLimit is what a target may answer at most unless told.
const defaultBodyLimit = "10MiB"

// scrapeTargets are the targets folded from the journal.
type scrapeTargets struct {
	mu sync.Mutex
	m  map[string]ScrapeTarget
}

func (s *scrapeTargets) fold(kind string, data map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case KindScrapeAdd:
		var t ScrapeTarget
		if b, err := json.Marshal(data["target"]); err == nil && json.Unmarshal(b, &t) == nil && t.Name != "" {
			s.m[t.Name] = t
		}
	case KindScrapeRm:
		name, _ := data["name"].(string)
		delete(s.m, name)
	}
}

func (s *scrapeTargets) list() []ScrapeTarget {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ScrapeTarget, 0, len(s.m))
	for _, t := range s.m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// foldKinds folds every event of kinds of the audit stream, in seq order.
func foldKinds(audit *journal.Stream, kinds []string, fold func(kind string, data map[string]any)) error {
	type ev struct {
		seq  int64
		kind string
		data map[string]any
	}
	var evs []ev
	for _, k := range kinds {
		it := audit.Scan(journal.Query{Kind: k})
		for it.Next() {
			e, err := it.Raw().Decode()
			if err != nil {
				it.Close()
				return err
			}
			evs = append(evs, ev{e.Seq, e.Kind, e.Data})
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].seq < evs[j].seq })
	for _, e := range evs {
		fold(e.kind, e.data)
	}
	return nil
}

// scrapeConfigYAML is the Prometheus configuration of the targets, as a
// prometheus.yml would hold it, so that config.Load applies Prometheus's
// defaults and checks.
func scrapeConfigYAML(targets []ScrapeTarget) (string, error) {
	type sc struct {
		JobName        string              `yaml:"job_name"`
		ScrapeInterval string              `yaml:"scrape_interval,omitempty"`
		ScrapeTimeout  string              `yaml:"scrape_timeout,omitempty"`
		MetricsPath    string              `yaml:"metrics_path"`
		Scheme         string              `yaml:"scheme"`
		BodySizeLimit  string              `yaml:"body_size_limit,omitempty"`
		Fallback       string              `yaml:"fallback_scrape_protocol"`
		Params         map[string][]string `yaml:"params,omitempty"`
	}
	var cfg struct {
		ScrapeConfigs []sc `yaml:"scrape_configs"`
	}
	for _, t := range targets {
		u, err := url.Parse(t.URL)
		if err != nil {
			return "", err
		}
		c := sc{JobName: t.Name, ScrapeInterval: t.Interval, ScrapeTimeout: t.Timeout, MetricsPath: u.Path, Scheme: u.Scheme, BodySizeLimit: t.BodyLimit, Fallback: string(config.PrometheusText0_0_4)}
		if c.MetricsPath == "" {
			c.MetricsPath = "/metrics"
		}
		if q := u.Query(); len(q) > 0 {
			c.Params = q
		}
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, c)
	}
	b, err := yaml.Marshal(cfg)
	return string(b), err
}

// checkScrapeTarget checks a target as Prometheus checks its
// configuration, and returns it with its defaults filled.
func checkScrapeTarget(t ScrapeTarget) (ScrapeTarget, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return t, fmt.Errorf("url=%s: want http(s)://HOST:PORT/PATH", t.URL)
	}
	if t.BodyLimit == "" {
		t.BodyLimit = defaultBodyLimit
	}
	y, err := scrapeConfigYAML([]ScrapeTarget{t})
	if err != nil {
		return t, err
	}
	cfg, err := config.Load(y, nil)
	if err != nil {
		return t, err
	}
	scs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return t, err
	}
	t.Interval = scs[0].ScrapeInterval.String()
	t.Timeout = scs[0].ScrapeTimeout.String()
	return t, nil
}

// scraper runs Prometheus's scrape manager over the targets.
type scraper struct {
	mgr   *scrape.Manager
	tsets chan map[string][]*targetgroup.Group
}

// apply gives the manager the targets: its configuration, then the
// target groups (one static target per job).
func (s *scraper) apply(targets []ScrapeTarget) error {
	y, err := scrapeConfigYAML(targets)
	if err != nil {
		return err
	}
	cfg, err := config.Load(y, nil)
	if err != nil {
		return err
	}
	if err := s.mgr.ApplyConfig(cfg); err != nil {
		return err
	}
	ts := map[string][]*targetgroup.Group{}
	for _, t := range targets {
		u, _ := url.Parse(t.URL)
		ts[t.Name] = []*targetgroup.Group{{
			Source:  "cairn/" + t.Name,
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
		}}
	}
	// Only the latest target groups matter: replace any the manager has
	// not taken yet.
	select {
	case <-s.tsets:
	default:
	}
	s.tsets <- ts
	return nil
}

// newScraper starts the scrape manager; it runs until ctx ends.
func (m *module) newScraper(ctx context.Context) (*scraper, error) {
	mgr, err := scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(100 * time.Millisecond)}, m.log.With("component", "scrape"), nil, nil, m.store.DB, m.registry)
	if err != nil {
		return nil, err
	}
	s := &scraper{mgr: mgr, tsets: make(chan map[string][]*targetgroup.Group, 1)}
	m.wg.Go(func() { _ = mgr.Run(s.tsets) })
	m.wg.Go(func() {
		<-ctx.Done()
		mgr.Stop()
	})
	return s, nil
}
