// Package metrics is cairn's metrics and alerts engine: Prometheus's own
// TSDB and PromQL engine embedded under <data>/metrics, Prometheus's HTTP
// API on the daemon's HTTP listener, /metrics in the text format, host
// (node_exporter's names) and container (cAdvisor's names) collectors,
// DogStatsD, scrape targets and alerting rules whose transitions are
// journal events.
package metrics

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// Name is the engine's name.
const Name = "metrics"

// internalJob is the job label of what cairn collects itself.
const internalJob = "cairn"

func init() {
	engines.Register(Name, func() engines.Module { return newModule() })
}

// module is the metrics engine as the daemon runs it.
type module struct {
	// flags
	interval       time.Duration
	retention      time.Duration
	retentionBytes int64
	maxSamples     int
	statsdAddr     string
	statsdSocket   string
	webhook        string
	alertNATS      bool
	alertCommand   string
	commandTimeout time.Duration
	statsdSeries   int

	log      *slog.Logger
	node     string
	dataDir  string
	journal  *journal.Journal
	services *engines.Services
	audit    *journal.Stream
	started  time.Time

	registry *prometheus.Registry
	store    *Store
	targets  *targetSet
	meta     *metadataStore
	rules    *rules.Manager
	statsd   *statsdAgg
	alerts   *alertState
	renotify *renotifier
	scrapes  *scrapeTargets
	// containers is the container collector, whose readings cAdvisor's
	// API answers.
	containers *containerCollector
	scraper    *scraper
	reloadMu   sync.Mutex
	recordMu   sync.Mutex
	// httpClient posts webhooks.
	httpClient *http.Client
	// receivers get the alerts' notifications.
	receivers []receiver
	runCtx    context.Context
	statsdLn  net.PacketConn
	statsdUx  net.PacketConn

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ engines.Module     = (*module)(nil)
	_ engines.HTTPRouter = (*module)(nil)
)

func newModule() *module {
	return &module{log: slog.Default(), meta: &metadataStore{}}
}

func (m *module) Name() string { return Name }

func (m *module) Flags(fs *flag.FlagSet) {
	fs.DurationVar(&m.interval, "metrics-interval", 10*time.Second, "how often the metrics engine collects cairn's own, the host's and the containers' metrics")
	fs.DurationVar(&m.retention, "metrics-retention", 15*24*time.Hour, "how long the metrics TSDB keeps samples (Prometheus's storage.tsdb.retention.time)")
	fs.Int64Var(&m.retentionBytes, "metrics-retention-bytes", 0, "how many bytes of blocks the metrics TSDB keeps (storage.tsdb.retention.size; 0: no bound)")
	fs.IntVar(&m.maxSamples, "query-max-samples", 50_000_000, "the most samples a PromQL query may load into memory (Prometheus's query.max-samples)")
	fs.StringVar(&m.statsdAddr, "statsd", defaultStatsd(), "DogStatsD UDP listen address (env CAIRN_STATSD), or off")
	fs.StringVar(&m.webhook, "alert-webhook", "", "post firing and resolved alerts to `URL` in Alertmanager's webhook JSON")
	fs.BoolVar(&m.alertNATS, "alert-nats", true, "publish firing and resolved alerts on the embedded NATS as cairn.alerts.NAME (Alertmanager's webhook JSON)")
	fs.StringVar(&m.alertCommand, "alert-command", "", "run the executable at `PATH` (no shell) for each firing and resolved alert, Alertmanager's webhook JSON on its stdin")
	fs.DurationVar(&m.commandTimeout, "alert-command-timeout", 10*time.Second, "kill an --alert-command run after this long (it is then retried)")
	fs.StringVar(&m.statsdSocket, "statsd-socket", "", "also serve DogStatsD on a unix datagram socket at `PATH` (Datadog's dogstatsd_socket; off unless given)")
	fs.IntVar(&m.statsdSeries, "statsd-max-series", 10000, "the most DogStatsD series kept; messages for more are dropped and counted")
}

func (m *module) Engines() map[string][]journal.Engine { return nil }

// defaultStatsd is $CAIRN_STATSD, else DogStatsD's 127.0.0.1:8125.
func defaultStatsd() string {
	if a := os.Getenv("CAIRN_STATSD"); a != "" {
		return a
	}
	return "127.0.0.1:8125"
}

// KindPrefixes are the kinds only this engine writes.
func (m *module) KindPrefixes() []string { return []string{"statsd.", "alert.", "metrics."} }

// Kinds are the kinds the engine writes (docs/events.md).
func (m *module) Kinds() []string {
	return []string{KindStatsdEvent, KindStatsdServiceCheck, KindScrapeAdd, KindScrapeRm, KindAlertAdd, KindAlertRm, KindAlertRules, KindAlertSilence, KindAlertPending, KindAlertFiring, KindAlertResolved, KindAlertWarning, KindAlertNoData}
}

func (m *module) Start(ctx context.Context, h engines.Host) error {
	if h.Logger != nil {
		m.log = h.Logger.With("engine", Name)
	}
	if m.interval <= 0 {
		return fmt.Errorf("--metrics-interval %v: must be positive", m.interval)
	}
	m.node, m.services, m.started, m.dataDir, m.journal = h.Node, h.Services, time.Now(), h.DataDir, h.Journal
	m.httpClient = &http.Client{Timeout: 10 * time.Second}
	if m.webhook != "" {
		m.receivers = append(m.receivers, webhookReceiver(m.httpClient, m.webhook))
	}
	if m.alertNATS && h.Publish != nil {
		m.receivers = append(m.receivers, natsReceiver(h.Publish))
	}
	if m.alertCommand != "" {
		if err := checkCommand(m.alertCommand); err != nil {
			return err
		}
		if m.commandTimeout <= 0 {
			return fmt.Errorf("--alert-command-timeout %v: must be positive", m.commandTimeout)
		}
		m.receivers = append(m.receivers, commandReceiver(m.alertCommand, m.commandTimeout))
	}
	m.alerts = newAlertState()
	m.renotify = newRenotifier()
	m.scrapes = &scrapeTargets{m: map[string]ScrapeTarget{}}
	if h.Journal != nil {
		m.audit = h.Journal.Stream(journal.Audit)
		if err := m.alerts.load(m.audit); err != nil {
			return fmt.Errorf("metrics: read the alert definitions: %w", err)
		}
		if err := foldKinds(m.audit, []string{KindScrapeAdd, KindScrapeRm}, m.scrapes.fold); err != nil {
			return fmt.Errorf("metrics: read the scrape targets: %w", err)
		}
	}
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if h.Journal != nil {
		m.registry.MustRegister(newJournalCollector(h.Journal))
	}
	m.registry.MustRegister(newSelfCollector(h.Journal, h.Services))
	if hc, err := newHostCollector(); err != nil {
		m.log.Warn("no host metrics: /proc cannot be read", "err", err)
	} else {
		m.registry.MustRegister(hc)
	}
	m.containers = newContainerCollector(h.Services, m.interval)
	m.registry.MustRegister(m.containers)
	m.statsd = newStatsdAgg(m.statsdSeries)
	m.registry.MustRegister(m.statsd)
	m.registry.MustRegister(m.statsd.counters()...)
	dir := filepath.Join(h.DataDir, "metrics")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	st, err := OpenStore(StoreOptions{
		Dir: filepath.Join(dir, "tsdb"), Retention: m.retention, RetentionBytes: m.retentionBytes,
		MaxSamples: m.maxSamples, Logger: m.log, Registerer: m.registry,
	})
	if err != nil {
		return err
	}
	m.store = st
	m.targets = m.newTargetSet()
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel, m.runCtx = cancel, runCtx
	m.rules = rules.NewManager(&rules.ManagerOptions{
		QueryFunc: rules.EngineQueryFunc(st.Engine, st.DB),
		// Notifications are sent on the transitions this engine
		// journals (evalIteration), not by the manager.
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Context:      runCtx,
		AppendableV2: st.DB,
		Queryable:    st.DB,
		Logger:       m.log.With("component", "rules"),
		Registerer:   m.registry,
		Parser:       st.Parser,
	})
	m.wg.Go(m.rules.Run)
	if m.statsdAddr != "off" {
		ln, err := listenStatsd(m.statsdAddr)
		if err != nil {
			cancel()
			st.Close()
			return err
		}
		m.statsdLn = ln
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cairn_statsd_kernel_drops_total",
			Help: "DogStatsD datagrams the kernel dropped because the socket's buffer was full (/proc/net/udp).",
		}, func() float64 { return kernelDrops(ln) }))
		events := make(chan *journal.Body, 4096)
		srv := &statsdServer{conn: ln, agg: m.statsd, events: events, node: m.node, log: m.log}
		m.wg.Go(srv.serve)
		if m.statsdSocket != "" {
			ux, err := listenStatsdUnix(m.statsdSocket)
			if err != nil {
				ln.Close()
				cancel()
				st.Close()
				return err
			}
			m.statsdUx = ux
			usrv := &statsdServer{conn: ux, agg: m.statsd, events: events, node: m.node, log: m.log}
			m.wg.Go(usrv.serve)
		}
		if h.Journal != nil {
			capture := h.Journal.Stream(journal.Capture)
			m.wg.Go(func() { appendEvents(runCtx, capture, events, m.log) })
		}
	}
	// The scrape manager registers its metrics as it is made: before the
	// first gather.
	if m.scraper, err = m.newScraper(runCtx); err != nil {
		cancel()
		st.Close()
		return fmt.Errorf("metrics: scrape manager: %w", err)
	}
	m.targets.mgr = m.scraper.mgr
	m.wg.Go(func() { m.collectLoop(runCtx) })
	m.wg.Go(func() { m.renotifyLoop(runCtx) })
	if err := m.scraper.apply(m.scrapes.list()); err != nil {
		m.log.Warn("scrape targets", "err", err)
	}
	if h.Services != nil {
		m.wg.Go(func() { m.followDiscovery(runCtx, h.Services) })
	}
	if err := m.reloadAlerts(); err != nil {
		m.log.Warn("alert rules", "err", err)
	}
	return nil
}

// statsdBound is the DogStatsD listener's bound address, or "off".
func (m *module) statsdBound() string {
	if m.statsdLn == nil {
		return "off"
	}
	return m.statsdLn.LocalAddr().String()
}

// newTargetSet makes the internal target: what /api/v1/targets shows for
// cairn's own collection, with the metadata of its families.
func (m *module) newTargetSet() *targetSet {
	cfg := &config.ScrapeConfig{JobName: internalJob, ScrapeInterval: model.Duration(m.interval), ScrapeTimeout: model.Duration(m.interval), MetricsPath: "/metrics", Scheme: "http"}
	lbls := labels.FromStrings(model.JobLabel, internalJob, model.InstanceLabel, m.node, model.AddressLabel, m.node, model.SchemeLabel, "http", model.MetricsPathLabel, "/metrics")
	t := scrape.NewTarget(lbls, cfg, nil, nil)
	t.SetMetadataStore(m.meta)
	return &targetSet{internal: t, internalCfg: cfg}
}

func (m *module) Stop() error {
	if m.cancel != nil {
		m.cancel()
	}
	if m.statsdLn != nil {
		m.statsdLn.Close()
	}
	if m.statsdUx != nil {
		m.statsdUx.Close()
		os.Remove(m.statsdSocket)
	}
	if m.rules != nil {
		m.rules.Stop()
	}
	m.wg.Wait()
	if m.store != nil {
		return m.store.Close()
	}
	return nil
}

// HTTPRoutes serve Prometheus's HTTP API and /metrics.
func (m *module) HTTPRoutes() []engines.Route {
	if m.store == nil {
		return nil
	}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_http_requests_total",
		Help: "HTTP requests the metrics engine's routes answered, by route, method and status code.",
	}, []string{"handler", "method", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_http_request_duration_seconds",
		Help:    "How long the metrics engine's routes took to answer, by route.",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler", "method", "code"})
	m.registry.MustRegister(reqs, dur)
	instrument := func(name string, h http.Handler) http.Handler {
		l := prometheus.Labels{"handler": name}
		return promhttp.InstrumentHandlerDuration(dur.MustCurryWith(l), promhttp.InstrumentHandlerCounter(reqs.MustCurryWith(l), h))
	}
	// Prometheus's API renders its OpenAPI document when it is made, 150 ms
	// of CPU here: it is made once, off the start-up path (the daemon
	// answers its first status without waiting), and a query that comes
	// sooner waits for it (docs/benchmarks.md, "Session 12").
	api := sync.OnceValue(m.apiHandler)
	go api()
	return []engines.Route{
		{Pattern: "/api/v1/", Handler: instrument("/api/v1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { api().ServeHTTP(w, r) }))},
		{Pattern: "GET /api/v2.0/spec", Handler: instrument("/api/v2.0/spec", http.HandlerFunc(m.serveCadvisorSpec))},
		{Pattern: "GET /api/v2.0/spec/{container...}", Handler: instrument("/api/v2.0/spec", http.HandlerFunc(m.serveCadvisorSpec))},
		{Pattern: "GET /api/v2.0/stats", Handler: instrument("/api/v2.0/stats", http.HandlerFunc(m.serveCadvisorStats))},
		{Pattern: "GET /api/v2.0/stats/{container...}", Handler: instrument("/api/v2.0/stats", http.HandlerFunc(m.serveCadvisorStats))},
		{Pattern: "GET /metrics", Handler: instrument("/metrics", promhttp.HandlerFor(lintedGatherer{m.registry}, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)}))},
	}
}

// collectLoop gathers everything registered every interval into the TSDB,
// as a scrape of /metrics would.
func (m *module) collectLoop(ctx context.Context) {
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		m.collectOnce(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// collectOnce gathers the registry and appends its samples at now, with
// up and scrape_duration_seconds as Prometheus records them for a target.
func (m *module) collectOnce(ctx context.Context, now time.Time) {
	t0 := time.Now()
	m.statsd.Flush()
	mfs, err := m.registry.Gather()
	if err != nil {
		// A collector that failed still leaves the others' families.
		m.log.Warn("collect metrics", "err", err)
	}
	m.meta.update(mfs)
	extra := map[string]string{model.JobLabel: internalJob, model.InstanceLabel: m.node}
	samples := FamilySamples(mfs, extra)
	up := 1.0
	if err != nil && len(mfs) == 0 {
		up = 0
	}
	samples = append(samples,
		Sample{Labels: labels.FromStrings(model.MetricNameLabel, "up", model.JobLabel, internalJob, model.InstanceLabel, m.node), Value: up},
		Sample{Labels: labels.FromStrings(model.MetricNameLabel, "scrape_duration_seconds", model.JobLabel, internalJob, model.InstanceLabel, m.node), Value: time.Since(t0).Seconds()},
		Sample{Labels: labels.FromStrings(model.MetricNameLabel, "scrape_samples_scraped", model.JobLabel, internalJob, model.InstanceLabel, m.node), Value: float64(len(samples))},
	)
	if _, skipped, err := AppendSamples(ctx, m.store.DB, now.UnixMilli(), samples); err != nil {
		m.log.Warn("store metrics", "err", err)
	} else if skipped > 0 {
		m.log.Debug("store metrics: samples skipped", "skipped", skipped)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
