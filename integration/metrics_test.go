package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() {
	// Every daemon these tests start binds DogStatsD on a free port unless
	// a test says otherwise: the default, 127.0.0.1:8125, would make
	// parallel daemons refuse to start (CAIRN_STATSD is --statsd's default).
	if os.Getenv("CAIRN_STATSD") == "" {
		os.Setenv("CAIRN_STATSD", "127.0.0.1:0")
	}
}

// promTool finds a Prometheus binary (promtool, prometheus: Debian
// `prometheus`), failing under CI=true and skipping elsewhere.
func promTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found, and CI must run it (Debian package prometheus): %v", name, err)
		}
		t.Skipf("%s not found (Debian package prometheus): %v", name, err)
	}
	return p
}

// promAPI is the envelope of Prometheus's HTTP API.
type promAPI struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func getPromAPI(t *testing.T, base, path string) promAPI {
	t.Helper()
	code, body := httpGet(t, base+path)
	var r promAPI
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET %s: %d %s: %v", path, code, body, err)
	}
	return r
}

// promVector is an instant query's data.
type promVector struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	} `json:"result"`
}

// instantValue asks base's query API for expr and returns its first
// sample's value, "" when the answer is empty.
func instantValue(t *testing.T, base, expr string) string {
	t.Helper()
	r := getPromAPI(t, base, "/api/v1/query?query="+url.QueryEscape(expr))
	if r.Status != "success" {
		t.Fatalf("query %s: %+v", expr, r)
	}
	var v promVector
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Result) == 0 {
		return ""
	}
	return fmt.Sprint(v.Result[0].Value[1])
}

// TestMetricsPrometheusAPI: the TSDB fills with cairn's own metrics;
// /metrics passes `promtool check metrics`; `promtool query instant` and
// Prometheus's JSON shapes work against cairn's API; the DSL verbs answer,
// a PromQL syntax error names its place and exits 2.
func TestMetricsPrometheusAPI(t *testing.T) {
	t.Parallel()
	promtool := promTool(t, "promtool")
	d := startDaemon(t, withFlags("--metrics-interval", "200ms"))
	base := "http://" + d.Status.HTTP

	waitFor(t, `up{job="cairn"} in cairn's TSDB`, 30*time.Second, func() bool {
		return instantValue(t, base, `up{job="cairn"}`) == "1"
	})

	// /metrics in the text format, as promtool lints it.
	code, body := httpGet(t, base+"/metrics")
	if code != 200 || !bytes.Contains(body, []byte("cairn_journal_appended_events_total")) {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// promtool, the Prometheus API's own client, against cairn.
	out, err := exec.Command(promtool, "query", "instant", base, `up{job="cairn"}`).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `up{instance=`) || !strings.Contains(string(out), "=> 1 @[") {
		t.Errorf("promtool query instant: %v\n%s", err, out)
	}
	end := time.Now()
	out, err = exec.Command(promtool, "query", "range", "--start", fmt.Sprint(end.Add(-time.Minute).Unix()), "--end", fmt.Sprint(end.Unix()+1), "--step", "1s", base, `cairn_journal_appended_events_total{stream="audit"}`).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `cairn_journal_appended_events_total{`) {
		t.Errorf("promtool query range: %v\n%s", err, out)
	}

	// The other read endpoints, in Prometheus's shapes.
	var names []string
	if r := getPromAPI(t, base, "/api/v1/labels"); r.Status != "success" || json.Unmarshal(r.Data, &names) != nil || !contains(names, "__name__") || !contains(names, "job") {
		t.Errorf("/api/v1/labels: %+v", r)
	}
	var jobs []string
	if r := getPromAPI(t, base, "/api/v1/label/job/values"); r.Status != "success" || json.Unmarshal(r.Data, &jobs) != nil || !contains(jobs, "cairn") {
		t.Errorf("/api/v1/label/job/values: %+v", r)
	}
	var series []map[string]string
	if r := getPromAPI(t, base, "/api/v1/series?match[]="+url.QueryEscape(`up{job="cairn"}`)); r.Status != "success" || json.Unmarshal(r.Data, &series) != nil || len(series) != 1 || series[0]["__name__"] != "up" {
		t.Errorf("/api/v1/series: %+v", r)
	}
	var meta map[string][]struct{ Type, Help string }
	if r := getPromAPI(t, base, "/api/v1/metadata?metric=cairn_journal_appended_events_total"); r.Status != "success" || json.Unmarshal(r.Data, &meta) != nil || len(meta["cairn_journal_appended_events_total"]) != 1 || meta["cairn_journal_appended_events_total"][0].Type != "counter" {
		t.Errorf("/api/v1/metadata: %+v", r)
	}
	var rng struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	r := getPromAPI(t, base, fmt.Sprintf("/api/v1/query_range?query=%s&start=%d&end=%d&step=1", url.QueryEscape(`up{job="cairn"}`), end.Add(-time.Minute).Unix(), end.Unix()+1))
	if r.Status != "success" || json.Unmarshal(r.Data, &rng) != nil || rng.ResultType != "matrix" || len(rng.Result) != 1 || len(rng.Result[0].Values) == 0 {
		t.Errorf("/api/v1/query_range: %+v", r)
	}
	if r := getPromAPI(t, base, "/api/v1/query?query="+url.QueryEscape("sum(")); r.Status != "error" || r.ErrorType != "bad_data" {
		t.Errorf("a bad query over the API: %+v, want status error, errorType bad_data", r)
	}

	// The verbs.
	rows := parseNDJSON[struct {
		Metric map[string]string `json:"metric"`
		Value  float64           `json:"value"`
	}](t, cliOK(t, d, "-o", "json", "metrics", "query", `up{job="cairn"}`))
	if len(rows) != 1 || rows[0].Value != 1 || rows[0].Metric["job"] != "cairn" {
		t.Errorf("metrics query: %+v", rows)
	}
	rrows := parseNDJSON[struct {
		Metric map[string]string `json:"metric"`
		Spark  string            `json:"spark"`
		Values [][2]float64      `json:"values"`
	}](t, cliOK(t, d, "-o", "json", "metrics", "range", `up{job="cairn"}`, "since=1m", "step=1s"))
	if len(rrows) != 1 || len(rrows[0].Values) == 0 || rrows[0].Spark == "" {
		t.Errorf("metrics range: %+v", rrows)
	}
	srows := cliOK(t, d, "-o", "json", "metrics", "series", `match={__name__="up"}`)
	if !strings.Contains(srows, `"job":"cairn"`) {
		t.Errorf("metrics series: %s", srows)
	}
	_, errOut, code := cli(t, d, "metrics", "query", "sum(rate(up[1m])")
	if code != 2 || !strings.Contains(errOut, "1:") || !strings.Contains(errOut, "PromQL") {
		t.Errorf("metrics query with a syntax error: exit %d, stderr %q; want exit 2 and its position", code, errOut)
	}
}

// TestMetricsMaxSamples: a query loading more samples than
// --query-max-samples is refused, naming the limit, and the daemon keeps
// answering.
func TestMetricsMaxSamples(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--metrics-interval", "200ms", "--query-max-samples", "10"))
	base := "http://" + d.Status.HTTP
	waitFor(t, `up{job="cairn"}`, 30*time.Second, func() bool { return instantValue(t, base, `up{job="cairn"}`) == "1" })
	_, errOut, code := cli(t, d, "metrics", "query", `{job="cairn"}`)
	if code != 1 || !strings.Contains(errOut, "query.max-samples") || !strings.Contains(errOut, "10 samples") {
		t.Errorf("a query over the limit: exit %d, stderr %q", code, errOut)
	}
	if r := getPromAPI(t, base, "/api/v1/query?query="+url.QueryEscape(`{job="cairn"}`)); r.Status != "error" || !strings.Contains(r.Error, "query.max-samples") {
		t.Errorf("over the API: %+v", r)
	}
	cliOK(t, d, "metrics", "query", `up{job="cairn"}`)
}

// TestMetricsScrapedByPrometheus: the real Prometheus, started on a
// loopback port, scrapes cairn's /metrics and stores cairn's series.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	prom := promTool(t, "prometheus")
	d := startDaemon(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cairn\n    static_configs:\n      - targets: [%q]\n", d.Status.HTTP)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackPort(t)
	var log bytes.Buffer
	cmd := exec.Command(prom, "--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "tsdb"), "--web.listen-address", addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	pbase := "http://" + addr
	waitFor(t, "Prometheus to answer", 60*time.Second, func() bool {
		c, _, err := tryGet(pbase + "/-/ready")
		return err == nil && c == 200
	})
	waitFor(t, "Prometheus to scrape cairn", 60*time.Second, func() bool {
		return instantValue(t, pbase, `up{job="cairn"}`) == "1" && instantValue(t, pbase, `cairn_journal_appended_events_total{stream="audit"}`) != ""
	})
	if v := instantValue(t, pbase, `scrape_samples_scraped{job="cairn"}`); v == "" || v == "0" {
		t.Errorf("Prometheus scraped %q samples from cairn", v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// freeLoopbackPort returns 127.0.0.1:PORT, a port free a moment ago, for
// a peer that cannot report the port it bound (Prometheus).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// tryGet fetches url, returning an error rather than failing the test (a
// peer still starting).
func tryGet(url string) (int, []byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestMetricsContainers: a container that burns CPU shows in cAdvisor's
// container_cpu_usage_seconds_total under its name, in the TSDB and on
// /metrics; the host shows under node_exporter's names.
func TestMetricsContainers(t *testing.T) {
	t.Parallel()
	requireRuntime(t)
	d, _ := runtimeDaemon(t, "--metrics-interval", "200ms")
	base := "http://" + d.Status.HTTP
	importBusybox(t, d, nil)
	cliOK(t, d, "run", "busybox", "name=burn", "detach", "network=none", "--", "sh", "-c", "while :; do :; done")

	waitFor(t, "the container's CPU to rise in the TSDB", 60*time.Second, func() bool {
		v := instantValue(t, base, `rate(container_cpu_usage_seconds_total{name="burn",image="busybox"}[2s])`)
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && f > 0.3
	})
	_, body := httpGet(t, base+"/metrics")
	for _, want := range []string{`container_cpu_usage_seconds_total{id="/cairn/`, `container_memory_working_set_bytes{`, `name="burn"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, expr := range []string{`node_cpu_seconds_total{mode="idle"}`, `node_memory_MemTotal_bytes`, `node_load1`, `node_filesystem_size_bytes{mountpoint="/"}`, `node_network_receive_bytes_total{device="lo"}`} {
		if instantValue(t, base, expr) == "" {
			t.Errorf("no %s in the TSDB", expr)
		}
	}

	// cAdvisor's REST API, v2.0.
	var spec map[string]struct {
		Aliases []string `json:"aliases"`
		Image   string   `json:"image"`
		HasCPU  bool     `json:"has_cpu"`
	}
	code, sb := httpGet(t, base+"/api/v2.0/spec/burn")
	if err := json.Unmarshal(sb, &spec); code != 200 || err != nil || len(spec) != 1 {
		t.Fatalf("/api/v2.0/spec/burn: %d %s", code, sb)
	}
	for key, sp := range spec {
		if !strings.HasPrefix(key, "/cairn/") || !contains(sp.Aliases, "burn") || sp.Image != "busybox" || !sp.HasCPU {
			t.Errorf("spec %s: %+v", key, sp)
		}
	}
	var stats map[string][]struct {
		Timestamp time.Time `json:"timestamp"`
		CPU       struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			WorkingSet uint64 `json:"working_set"`
		} `json:"memory"`
	}
	code, sb = httpGet(t, base+"/api/v2.0/stats/burn?count=2")
	if err := json.Unmarshal(sb, &stats); code != 200 || err != nil || len(stats) != 1 {
		t.Fatalf("/api/v2.0/stats/burn: %d %s", code, sb)
	}
	for key, list := range stats {
		if len(list) != 2 || list[1].CPU.Usage.Total <= list[0].CPU.Usage.Total || list[1].Memory.WorkingSet == 0 || !list[1].Timestamp.After(list[0].Timestamp) {
			t.Errorf("stats %s: %+v", key, list)
		}
	}
	if code, _ := httpGet(t, base+"/api/v2.0/stats/nosuch"); code != 404 {
		t.Errorf("stats of an unknown container: %d", code)
	}
	cliOK(t, d, "rm", "burn", "force")
}

// TestMetricsDogStatsD: DogStatsD packets over UDP (counters with a sample
// rate, gauges, histograms, timers, sets, tags) become series with the
// right values; an event and a service check become journal events.
func TestMetricsDogStatsD(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--metrics-interval", "200ms", "--statsd", "127.0.0.1:0"))
	base := "http://" + d.Status.HTTP
	st := parseNDJSON[struct {
		Statsd string `json:"statsd"`
	}](t, cliOK(t, d, "-o", "json", "metrics", "status"))
	if len(st) != 1 || !strings.HasPrefix(st[0].Statsd, "127.0.0.1:") {
		t.Fatalf("metrics status: %+v", st)
	}
	conn, err := net.Dial("udp", st[0].Statsd)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(s string) {
		if _, err := conn.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send("shop.orders:1|c|@0.5|#env:prod,region:eu\nshop.orders:1|c|@0.5|#env:prod,region:eu")
	send("shop.temp:20|g|#room:a")
	send("shop.temp:+5|g|#room:a")
	send("shop.basket:10:30|h|#env:prod")
	send("shop.basket:20|h|#env:prod")
	send("shop.db:250|ms")
	send("shop.users:alice|s\nshop.users:bob|s\nshop.users:alice|s")
	send("_e{12,9}:deploy start|version 2|t:warning|#svc:shop")
	send("_sc|shop.db|2|#env:prod|m:connection refused")
	send("this is not dogstatsd")
	// The last packet is a sentinel: once it shows, the ones before it
	// (same socket, in order on loopback) were handled.
	send("shop.sentinel:1|g")

	waitFor(t, "the DogStatsD series", 30*time.Second, func() bool {
		return instantValue(t, base, `shop_sentinel`) == "1"
	})
	waitFor(t, "a collection after the sentinel", 30*time.Second, func() bool {
		return instantValue(t, base, `shop_users`) == "2"
	})
	for expr, want := range map[string]string{
		`shop_orders_total{env="prod",region="eu"}`:              "4",
		`shop_temp{room="a"}`:                                    "25",
		`shop_basket_count{env="prod"}`:                          "3",
		`shop_basket_sum{env="prod"}`:                            "60",
		`shop_db_sum`:                                            "0.25",
		`cairn_statsd_dropped_total{reason="parse"}`:             "1",
		`sum(cairn_statsd_messages_total{type="service_check"})`: "1",
	} {
		if got := instantValue(t, base, expr); got != want {
			t.Errorf("%s = %q, want %s", expr, got, want)
		}
	}
	var evs []httpEvent
	waitFor(t, "the DogStatsD event and service check in the journal", 30*time.Second, func() bool {
		evs = parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "stream=capture", "kind=statsd.*"))
		return len(evs) == 2
	})
	byKind := map[string]httpEvent{}
	for _, e := range evs {
		byKind[e.Kind] = e
	}
	if e := byKind["statsd.event"]; e.Subject != "deploy start" || e.Data["text"] != "version 2" || e.Data["alert_type"] != "warning" || e.Actor.Via != "statsd" {
		t.Errorf("statsd.event: %+v", e)
	}
	if e := byKind["statsd.service_check"]; e.Subject != "shop.db" || e.Data["status_name"] != "critical" || e.Data["message"] != "connection refused" {
		t.Errorf("statsd.service_check: %+v", e)
	}
}

// webhookReceiver records the Alertmanager-shaped messages posted to it.
type webhookReceiver struct {
	mu   sync.Mutex
	msgs []amMessage
	got  chan struct{}
}

// amMessage is Alertmanager's webhook payload, as a receiver decodes it.
type amMessage struct {
	Version     string            `json:"version"`
	GroupKey    string            `json:"groupKey"`
	Status      string            `json:"status"`
	Receiver    string            `json:"receiver"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	} `json:"alerts"`
}

func newWebhookReceiver(t *testing.T) (*webhookReceiver, string) {
	t.Helper()
	wr := &webhookReceiver{got: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m amMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "not an Alertmanager webhook", 400)
			return
		}
		wr.mu.Lock()
		wr.msgs = append(wr.msgs, m)
		wr.mu.Unlock()
		wr.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return wr, srv.URL + "/hook"
}

// waitStatus waits for a message of status for alertname.
func (wr *webhookReceiver) waitStatus(t *testing.T, alertname, status string) amMessage {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		wr.mu.Lock()
		for _, m := range wr.msgs {
			if m.Status == status && m.GroupLabels["alertname"] == alertname {
				wr.mu.Unlock()
				return m
			}
		}
		wr.mu.Unlock()
		select {
		case <-wr.got:
		case <-deadline:
			t.Fatalf("no %s webhook for %s", status, alertname)
		}
	}
}

// alertEvents lists the alert transitions of name in the journal.
func alertEvents(t *testing.T, d *daemonProc, name string) []httpEvent {
	t.Helper()
	var out []httpEvent
	for _, e := range parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=alert.*")) {
		if e.Subject == name && (e.Kind == "alert.pending" || e.Kind == "alert.firing" || e.Kind == "alert.resolved") {
			out = append(out, e)
		}
	}
	return out
}

func kindsOf(evs []httpEvent) string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, strings.TrimPrefix(e.Kind, "alert."))
	}
	return strings.Join(ks, ",")
}

// TestMetricsAlertContainer: an alert on a container's CPU goes pending →
// firing while the container burns CPU and resolved once it is removed,
// each transition an audit event; the webhook receiver gets
// Alertmanager-shaped JSON for firing and resolved.
func TestMetricsAlertContainer(t *testing.T) {
	t.Parallel()
	requireRuntime(t)
	wr, hook := newWebhookReceiver(t)
	d, _ := runtimeDaemon(t, "--metrics-interval", "300ms", "--alert-webhook", hook)
	importBusybox(t, d, nil)
	cliOK(t, d, "run", "busybox", "name=hot", "detach", "network=none", "--", "sh", "-c", "while :; do :; done")
	cliOK(t, d, "alert", "add", "HotContainer", `expr=rate(container_cpu_usage_seconds_total{name="hot"}[2s]) > 0.2`, "for=2s", "labels.severity=page", "annotations.summary={{ $labels.name }} burns CPU")

	fired := wr.waitStatus(t, "HotContainer", "firing")
	if fired.Version != "4" || fired.Receiver == "" || len(fired.Alerts) != 1 || fired.Alerts[0].Labels["name"] != "hot" || fired.Alerts[0].Labels["severity"] != "page" || fired.Alerts[0].Annotations["summary"] != "hot burns CPU" || fired.Alerts[0].StartsAt.IsZero() || fired.Alerts[0].Fingerprint == "" {
		t.Errorf("firing webhook: %+v", fired)
	}
	rows := cliOK(t, d, "-o", "json", "alerts")
	if !strings.Contains(rows, `"name":"HotContainer"`) || !strings.Contains(rows, `"state":"firing"`) {
		t.Errorf("alerts: %s", rows)
	}
	cliOK(t, d, "rm", "hot", "force")
	resolved := wr.waitStatus(t, "HotContainer", "resolved")
	if len(resolved.Alerts) != 1 || resolved.Alerts[0].Status != "resolved" || resolved.Alerts[0].EndsAt.IsZero() {
		t.Errorf("resolved webhook: %+v", resolved)
	}
	var evs []httpEvent
	waitFor(t, "alert.resolved in the journal", 30*time.Second, func() bool {
		evs = alertEvents(t, d, "HotContainer")
		return strings.HasSuffix(kindsOf(evs), "resolved")
	})
	if kindsOf(evs) != "pending,firing,resolved" {
		t.Fatalf("transitions %s, want pending,firing,resolved", kindsOf(evs))
	}
	for _, e := range evs {
		if e.Data["expr"] == "" || e.Actor.Via != "system" || e.Data["labels"].(map[string]any)["name"] != "hot" {
			t.Errorf("%s: %+v", e.Kind, e)
		}
	}
	if v, _ := evs[1].Data["value"].(float64); v <= 0.2 {
		t.Errorf("alert.firing value %v, want the CPU rate above 0.2", evs[1].Data["value"])
	}
}

// TestMetricsAlertRules: a Prometheus rule file with a recording and an
// alerting rule loads (bad ones are refused as promtool would), the
// recording rule's series is stored, the alert fires, a silence stops
// its webhook but not its journal, and the definitions survive a restart.
func TestMetricsAlertRules(t *testing.T) {
	t.Parallel()
	wr, hook := newWebhookReceiver(t)
	d := startDaemon(t, withFlags("--metrics-interval", "200ms", "--alert-webhook", hook))
	base := "http://" + d.Status.HTTP
	dir := t.TempDir()
	good := filepath.Join(dir, "cairn.rules.yml")
	if err := os.WriteFile(good, []byte(`groups:
  - name: cairn
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: CairnUp
        expr: up{job="cairn"} == 1
        labels:
          team: ops
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, d, "alert", "rules", "load", bad); code != 2 || !strings.Contains(errOut, "Broken") {
		t.Errorf("a bad rule file: exit %d, %s", code, errOut)
	}
	out := cliOK(t, d, "-o", "json", "alert", "rules", "load", good)
	if !strings.Contains(out, `"alerting":1`) || !strings.Contains(out, `"recording":1`) {
		t.Errorf("alert rules load: %s", out)
	}
	waitFor(t, "the recording rule's series", 30*time.Second, func() bool {
		return instantValue(t, base, `job:up:sum{job="cairn"}`) == "1"
	})
	wr.waitStatus(t, "CairnUp", "firing")
	if r := getPromAPI(t, base, "/api/v1/rules"); r.Status != "success" || !strings.Contains(string(r.Data), `"CairnUp"`) {
		t.Errorf("/api/v1/rules: %+v", r)
	}
	if r := getPromAPI(t, base, "/api/v1/alerts"); r.Status != "success" || !strings.Contains(string(r.Data), `"firing"`) {
		t.Errorf("/api/v1/alerts: %+v", r)
	}
	cliOK(t, d, "alert", "silence", "CairnUp", "for=1h")
	if _, _, code := cli(t, d, "alert", "silence", "Nope", "for=1h"); code != 1 {
		t.Errorf("silence of an unknown alert: exit %d", code)
	}
	// A daemon killed mid-write: the TSDB recovers from its WAL (the
	// samples before the kill are there), and the rules start again from
	// the journal, the alert firing anew (its transition journaled) but
	// silenced, so no webhook.
	wr.mu.Lock()
	before := len(wr.msgs)
	wr.mu.Unlock()
	killedAt := time.Now()
	d.Kill()
	d.Restart()
	base = "http://" + d.Status.HTTP
	r := getPromAPI(t, base, fmt.Sprintf("/api/v1/query?query=%s&time=%.3f", url.QueryEscape(`count_over_time(job:up:sum{job="cairn"}[1m])`), float64(killedAt.UnixMilli())/1000))
	var v promVector
	if r.Status != "success" || json.Unmarshal(r.Data, &v) != nil || len(v.Result) != 1 {
		t.Errorf("samples from before the SIGKILL: %+v", r)
	}
	waitFor(t, "CairnUp to fire again after the restart", 60*time.Second, func() bool {
		evs := alertEvents(t, d, "CairnUp")
		return len(evs) > 0 && evs[len(evs)-1].Data["silenced_until"] != nil && evs[len(evs)-1].Kind == "alert.firing"
	})
	wr.mu.Lock()
	after := len(wr.msgs)
	wr.mu.Unlock()
	if after != before {
		t.Errorf("a silenced alert sent %d webhooks", after-before)
	}
	cliOK(t, d, "alert", "rm", "cairn.rules")
	waitFor(t, "CairnUp resolved once its rules are removed", 30*time.Second, func() bool {
		return strings.HasSuffix(kindsOf(alertEvents(t, d, "CairnUp")), "resolved")
	})
}

// TestMetricsEventMonitor: an event monitor fires on the 4th app.crash
// within 10 minutes (emitted events; deploy.resurrect, the docs' example,
// only the deploy engine writes), not before.
func TestMetricsEventMonitor(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--metrics-interval", "200ms"))
	cliOK(t, d, "alert", "add", "Resurrections", "events", "count>3", "where", `kind == "app.crash"`, "within=10m", "labels.severity=warn")
	if _, errOut, code := cli(t, d, "alert", "add", "X", "events", "count>3", "where", `knd == "x"`); code != 2 || !strings.Contains(errOut, "kind") {
		t.Errorf("a bad CEL filter: exit %d, %s", code, errOut)
	}
	for i := range 3 {
		cliOK(t, d, "emit", "app.crash", fmt.Sprintf("web/%d", i))
	}
	cliOK(t, d, "emit", "app.other", "web/0")
	// At 3 in the window, nothing fired.
	waitFor(t, "the monitor to count 3", 30*time.Second, func() bool {
		return strings.Contains(cliOK(t, d, "-o", "json", "alerts"), `"count":3`)
	})
	if evs := alertEvents(t, d, "Resurrections"); len(evs) != 0 {
		t.Fatalf("fired at 3: %s", kindsOf(evs))
	}
	cliOK(t, d, "emit", "app.crash", "web/3")
	var evs []httpEvent
	waitFor(t, "the monitor to fire at 4", 30*time.Second, func() bool {
		evs = alertEvents(t, d, "Resurrections")
		return len(evs) > 0
	})
	if kindsOf(evs) != "firing" || evs[0].Data["value"] != float64(4) || evs[0].Data["labels"].(map[string]any)["severity"] != "warn" {
		t.Errorf("event monitor: %+v", evs)
	}
	if !strings.Contains(cliOK(t, d, "-o", "json", "alerts"), `"state":"firing"`) {
		t.Errorf("alerts does not show it firing")
	}
}

// TestMetricsScrape: targets added with metrics scrape add are scraped as
// Prometheus does (up, scrape_duration_seconds, the target's series under
// job=NAME); one that hangs hits its timeout, one answering 100 MB its
// body limit, both up 0; the daemon keeps serving.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprintf(w, "# HELP shop_requests_total Requests.\n# TYPE shop_requests_total counter\nshop_requests_total{path=\"/\"} 42\n")
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/huge":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			line := []byte(strings.Repeat("x", 90) + "_total 1\n")
			for i := 0; i < 100<<20/len(line); i++ {
				if _, err := w.Write(line); err != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	d := startDaemon(t)
	base := "http://" + d.Status.HTTP
	cliOK(t, d, "metrics", "scrape", "add", "good", "url="+srv.URL+"/good", "interval=500ms")
	cliOK(t, d, "metrics", "scrape", "add", "slow", "url="+srv.URL+"/slow", "interval=1s", "timeout=300ms")
	cliOK(t, d, "metrics", "scrape", "add", "huge", "url="+srv.URL+"/huge", "interval=1s")
	if _, errOut, code := cli(t, d, "metrics", "scrape", "add", "bad", "url=ftp://x/metrics"); code != 2 || !strings.Contains(errOut, "url=") {
		t.Errorf("a bad url: exit %d %s", code, errOut)
	}
	if _, _, code := cli(t, d, "metrics", "scrape", "add", "x", "url="+srv.URL+"/good", "interval=1s", "timeout=2s"); code != 2 {
		t.Errorf("timeout above interval: exit %d, want 2 (Prometheus refuses it)", code)
	}

	waitFor(t, "the good target scraped", 60*time.Second, func() bool {
		return instantValue(t, base, `up{job="good"}`) == "1" && instantValue(t, base, `shop_requests_total{job="good",path="/"}`) == "42"
	})
	if instantValue(t, base, `scrape_duration_seconds{job="good"}`) == "" {
		t.Error("no scrape_duration_seconds for the good target")
	}
	waitFor(t, "the slow and huge targets down", 60*time.Second, func() bool {
		return instantValue(t, base, `up{job="slow"}`) == "0" && instantValue(t, base, `up{job="huge"}`) == "0"
	})
	rows := parseNDJSON[struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"last_error"`
		BodyLimit string `json:"body_limit"`
	}](t, cliOK(t, d, "-o", "json", "metrics", "scrape", "list"))
	byName := map[string]string{}
	for _, r := range rows {
		byName[r.Name] = r.Health + " " + r.LastError
		if r.BodyLimit != "10MiB" {
			t.Errorf("%s body limit %q, want the default 10MiB", r.Name, r.BodyLimit)
		}
	}
	if !strings.HasPrefix(byName["good"], "up") || !strings.Contains(byName["slow"], "deadline") || !strings.Contains(byName["huge"], "body size limit") {
		t.Errorf("metrics scrape list: %v", byName)
	}
	var targets struct {
		ActiveTargets []struct {
			ScrapePool string `json:"scrapePool"`
			Health     string `json:"health"`
		} `json:"activeTargets"`
	}
	if r := getPromAPI(t, base, "/api/v1/targets"); r.Status != "success" || json.Unmarshal(r.Data, &targets) != nil || len(targets.ActiveTargets) != 4 {
		t.Errorf("/api/v1/targets: %+v", r)
	}
	cliOK(t, d, "metrics", "scrape", "rm", "huge")
	if out := cliOK(t, d, "-o", "json", "metrics", "scrape", "list"); strings.Contains(out, `"huge"`) {
		t.Errorf("after rm: %s", out)
	}
	cliOK(t, d, "status")
}

// TestMetricsSameAnswersAsPrometheus: the real Prometheus and cairn scrape
// the same target (counters linear in the wall clock, a histogram,
// gauges); rate, sum by, histogram_quantile and topk give the same answers
// from both at the same evaluation time.
func TestMetricsSameAnswersAsPrometheus(t *testing.T) {
	t.Parallel()
	prom := promTool(t, "prometheus")
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := float64(time.Now().UnixMilli()) / 1000
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE req_total counter\n")
		for i := range 20 {
			fmt.Fprintf(w, "req_total{svc=\"s%d\",code=\"%d\"} %g\n", i, 200+100*(i%3), now*float64(i+1))
		}
		fmt.Fprintf(w, "# TYPE lat_seconds histogram\n")
		for j, le := range []string{"0.1", "0.5", "1", "+Inf"} {
			fmt.Fprintf(w, "lat_seconds_bucket{le=%q} %g\n", le, now*float64(j+1))
		}
		fmt.Fprintf(w, "lat_seconds_sum %g\nlat_seconds_count %g\n# TYPE depth gauge\n", now, now*4)
		for i := range 20 {
			fmt.Fprintf(w, "depth{q=\"%d\"} %d\n", i, (i*37)%23)
		}
	}))
	t.Cleanup(target.Close)
	host := strings.TrimPrefix(target.URL, "http://")

	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gen\n    static_configs:\n      - targets: [%q]\n", host)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	paddr := freeLoopbackPort(t)
	var log bytes.Buffer
	cmd := exec.Command(prom, "--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "tsdb"), "--web.listen-address", paddr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	d := startDaemon(t)
	cliOK(t, d, "metrics", "scrape", "add", "gen", "url="+target.URL+"/metrics", "interval=1s", "timeout=1s")
	cbase, pbase := "http://"+d.Status.HTTP, "http://"+paddr
	enough := func(base string) bool {
		c, _, err := tryGet(base + "/-/ready")
		if base == pbase && (err != nil || c != 200) {
			return false
		}
		v, _ := strconv.ParseFloat(instantValue(t, base, `count_over_time(lat_seconds_count{job="gen"}[10s])`), 64)
		return v >= 8
	}
	waitFor(t, "8 scrapes by both", 90*time.Second, func() bool { return enough(cbase) && enough(pbase) })

	at := time.Now().Add(-1500 * time.Millisecond)
	answer := func(base, q string) map[string]float64 {
		r := getPromAPI(t, base, fmt.Sprintf("/api/v1/query?query=%s&time=%.3f", url.QueryEscape(q), float64(at.UnixMilli())/1000))
		var v promVector
		if r.Status != "success" || json.Unmarshal(r.Data, &v) != nil {
			t.Fatalf("%s %s: %+v", base, q, r)
		}
		out := map[string]float64{}
		for _, s := range v.Result {
			delete(s.Metric, "instance")
			b, _ := json.Marshal(s.Metric)
			f, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
			out[string(b)] = f
		}
		return out
	}
	for _, q := range []string{
		`sum by (code) (rate(req_total[5s]))`,
		`rate(req_total{code="300"}[5s])`,
		`histogram_quantile(0.9, rate(lat_seconds_bucket[5s]))`,
		`topk(3, depth)`,
	} {
		ca, pa := answer(cbase, q), answer(pbase, q)
		if len(ca) == 0 || len(ca) != len(pa) {
			t.Errorf("%s: cairn %v, Prometheus %v", q, ca, pa)
			continue
		}
		for k, pv := range pa {
			// Each scraper stamps a sample with its scrape's start; the
			// target computes the value a moment later: 0.1% apart at most.
			if cv, ok := ca[k]; !ok || math.Abs(cv-pv) > 1e-3*math.Abs(pv) {
				t.Errorf("%s %s: cairn %v, Prometheus %v", q, k, ca[k], pv)
			}
		}
	}
}
