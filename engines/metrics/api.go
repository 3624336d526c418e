package metrics

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/notifications"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
)

// The Prometheus HTTP API is Prometheus's own handler (web/api/v1) over
// the embedded TSDB and query engine, so its answers have Prometheus's
// JSON shapes, errors and parameter parsing, and Grafana's data source
// and promtool work against it unchanged. Only the read API is served:
// no admin endpoints, remote write or OTLP receiver.

// apiHandler builds the handler of /api/v1/.
func (m *module) apiHandler() http.Handler {
	cfg := func() config.Config {
		c := config.DefaultConfig
		c.GlobalConfig.ScrapeInterval = model.Duration(m.interval)
		c.GlobalConfig.EvaluationInterval = model.Duration(m.interval)
		return c
	}
	api := apiv1.NewAPI(
		namedLimitEngine{m.store.Engine, m.store.opts.MaxSamples}, m.store.DB, nil, nil,
		func(context.Context) apiv1.ScrapePoolsRetriever { return m.targets },
		func(context.Context) apiv1.TargetRetriever { return m.targets },
		func(context.Context) apiv1.AlertmanagerRetriever { return noAlertmanagers{} },
		cfg,
		map[string]string{"storage.tsdb.path": m.store.opts.Dir, "query.max-samples": itoa(m.maxSamples)},
		apiv1.GlobalURLOptions{Scheme: "http"},
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		adminStats{m.store.DB}, m.store.opts.Dir,
		false,    // admin API
		false, 0, // search API
		m.log.With("component", "prometheus-api"),
		func(context.Context) apiv1.RulesRetriever { return m.rules },
		0, 0, 0, // remote read
		false, // agent
		nil,   // CORS
		m.runtimeInfo,
		&apiv1.PrometheusVersion{Version: "cairn", GoVersion: runtime.Version()},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		m.registry, m.registry,
		nil,
		false, nil, // remote write receiver
		false, false, false, // OTLP
		m.store.opts.LookbackDelta,
		false, false,
		nil, nil,
		apiv1.OpenAPIOptions{},
		m.store.Parser,
		false,
		m.store.opts.QueryTimeout,
	)
	r := route.New()
	api.Register(r.WithPrefix("/api/v1"))
	return r
}

func (m *module) runtimeInfo() (apiv1.RuntimeInfo, error) {
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	return apiv1.RuntimeInfo{
		StartTime: m.started, CWD: cwd, Hostname: host, ServerTime: time.Now(),
		ReloadConfigSuccess: true, LastConfigTime: m.started,
		GoroutineCount: runtime.NumGoroutine(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		StorageRetention: m.retention.String(),
	}, nil
}

// noAlertmanagers: cairn sends its alerts itself (webhook in
// Alertmanager's shape), to no Alertmanager.
type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

// targetSet is what /api/v1/targets and /api/v1/metadata read: cairn's
// own collection (job "cairn": itself, the host, its containers,
// DogStatsD) and the scrape manager's targets.
type targetSet struct {
	internal    *scrape.Target
	internalCfg *config.ScrapeConfig
	mgr         *scrape.Manager
}

var (
	_ apiv1.TargetRetriever      = (*targetSet)(nil)
	_ apiv1.ScrapePoolsRetriever = (*targetSet)(nil)
	_ apiv1.RulesRetriever       = (*rules.Manager)(nil)
	_ prometheus.Gatherer        = (*prometheus.Registry)(nil)
)

func (t *targetSet) ScrapePools() []string {
	pools := []string{internalJob}
	if t.mgr != nil {
		pools = append(pools, t.mgr.ScrapePools()...)
	}
	return pools
}

func (t *targetSet) TargetsActive() map[string][]*scrape.Target {
	out := map[string][]*scrape.Target{}
	if t.mgr != nil {
		for k, v := range t.mgr.TargetsActive() {
			out[k] = v
		}
	}
	out[internalJob] = []*scrape.Target{t.internal}
	return out
}

func (t *targetSet) TargetsDropped() map[string][]*scrape.Target {
	if t.mgr != nil {
		return t.mgr.TargetsDropped()
	}
	return map[string][]*scrape.Target{}
}

func (t *targetSet) TargetsDroppedCounts() map[string]int {
	if t.mgr != nil {
		return t.mgr.TargetsDroppedCounts()
	}
	return map[string]int{}
}

func (t *targetSet) ScrapePoolConfig(pool string) (*config.ScrapeConfig, error) {
	if pool == internalJob {
		return t.internalCfg, nil
	}
	if t.mgr == nil {
		return nil, errNoPool(pool)
	}
	return t.mgr.ScrapePoolConfig(pool)
}

type errNoPool string

func (e errNoPool) Error() string { return "unknown scrape pool " + string(e) }

// adminStats is the TSDB as the API's status pages read it.
type adminStats struct{ *tsdb.DB }

func (a adminStats) BlockMetas() ([]tsdb.BlockMeta, error) { return a.DB.BlockMetas(), nil }

func (a adminStats) Stats(byLabel string, limit int) (*tsdb.Stats, error) {
	return a.DB.Head().Stats(byLabel, limit), nil
}

func (a adminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}
