package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client"
)

// The metrics part (issue 19): the real Prometheus (Debian's) and cairn
// scrape the same generated target; the same PromQL is asked of both at
// the same evaluation time, the answers compared and the latencies
// measured; then a DogStatsD flood measures cairn's packets per second.

// benchQueries are the PromQL the two answer: rate, sum by,
// histogram_quantile, topk.
var benchQueries = []string{
	`sum by (code) (rate(bench_requests_total[30s]))`,
	`rate(bench_requests_total{code="500"}[30s])`,
	`histogram_quantile(0.9, sum by (le) (rate(bench_latency_seconds_bucket[30s])))`,
	`topk(5, bench_queue_depth)`,
}

// genTarget serves /metrics with svcs services' series whose counters grow
// linearly with the wall clock, so that two scrapers at different moments
// see the same rates.
func genTarget(svcs int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := float64(time.Now().UnixMilli()) / 1000
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		var sb strings.Builder
		sb.WriteString("# HELP bench_requests_total Requests.\n# TYPE bench_requests_total counter\n")
		for i := range svcs {
			fmt.Fprintf(&sb, "bench_requests_total{svc=\"s%d\",code=\"200\"} %g\n", i, now*float64(i%7+1))
			fmt.Fprintf(&sb, "bench_requests_total{svc=\"s%d\",code=\"500\"} %g\n", i, now*float64(i%3)/10)
		}
		sb.WriteString("# HELP bench_latency_seconds Latency.\n# TYPE bench_latency_seconds histogram\n")
		bounds := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"}
		for i := range svcs {
			for j, le := range bounds {
				fmt.Fprintf(&sb, "bench_latency_seconds_bucket{svc=\"s%d\",le=%q} %g\n", i, le, now*float64(j+1)*float64(i%5+1))
			}
			fmt.Fprintf(&sb, "bench_latency_seconds_sum{svc=\"s%d\"} %g\nbench_latency_seconds_count{svc=\"s%d\"} %g\n", i, now*float64(i%5+1), i, now*10*float64(i%5+1))
		}
		sb.WriteString("# HELP bench_queue_depth Queue depth.\n# TYPE bench_queue_depth gauge\n")
		for i := range svcs * 2 {
			fmt.Fprintf(&sb, "bench_queue_depth{svc=\"s%d\",q=\"%d\"} %d\n", i/2, i%2, (i*7919)%10007)
		}
		io.WriteString(w, sb.String())
	})
}

func runMetrics(ctx context.Context, b *bench) error {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		return fmt.Errorf("the peer, prometheus, is not installed (Debian package prometheus): %w", err)
	}
	// 10,000 series: 625 services × (2 counters + 12 histogram series + 2 gauges).
	svcs := 625
	dur := 2 * time.Minute
	if b.cfg.quick {
		svcs, dur = 60, 40*time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: genTarget(svcs)}
	go srv.Serve(ln)
	defer srv.Close()
	target := ln.Addr().String()

	// Prometheus on a free port.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	paddr := pl.Addr().String()
	pl.Close()
	pdir := filepath.Join(b.tmp, "prometheus")
	os.MkdirAll(pdir, 0o755)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gen\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(pdir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	plog, _ := os.Create(filepath.Join(pdir, "log"))
	defer plog.Close()
	pcmd := exec.CommandContext(ctx, prom, "--config.file", filepath.Join(pdir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(pdir, "tsdb"), "--web.listen-address", paddr)
	pcmd.Stdout, pcmd.Stderr = plog, plog
	if err := pcmd.Start(); err != nil {
		return err
	}
	defer func() { pcmd.Process.Kill(); pcmd.Wait() }()

	d, err := b.newDaemon(filepath.Join(b.tmp, "metrics-data"))
	if err != nil {
		return err
	}
	d.Extra = append(d.Extra, "--statsd", "127.0.0.1:0")
	if _, _, err := d.start(ctx); err != nil {
		return err
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Do(ctx, fmt.Sprintf("metrics scrape add gen url=http://%s/metrics interval=1s timeout=1s", target)); err != nil {
		return err
	}
	cbase, pbase := "http://"+d.Status.HTTP, "http://"+paddr
	b.logf("metrics: cairn and Prometheus scraping %d series for %s", svcs*16, dur)
	select {
	case <-time.After(dur):
	case <-ctx.Done():
		return ctx.Err()
	}
	series, _ := instantSum(cbase, `count({job="gen",__name__=~"bench_.*"})`, time.Now())
	// Evaluate both at one time both have scraped past.
	at := time.Now().Add(-3 * time.Second).Truncate(time.Second)
	rounds := 5 * b.cfg.rounds
	var ratios []float64
	agree := true
	for _, q := range benchQueries {
		ca, err := queryAnswer(cbase, q, at)
		if err != nil {
			return fmt.Errorf("cairn %s: %w", q, err)
		}
		pa, err := queryAnswer(pbase, q, at)
		if err != nil {
			return fmt.Errorf("prometheus %s: %w", q, err)
		}
		same, why := sameAnswers(ca, pa)
		if !same {
			agree = false
			b.logf("metrics: %s: answers differ: %s", q, why)
		}
		var ct, pt []float64
		for i := range rounds {
			// Alternate who goes first.
			order := []string{cbase, pbase}
			if i%2 == 1 {
				order = []string{pbase, cbase}
			}
			for _, base := range order {
				t0 := time.Now()
				if _, err := queryAnswer(base, q, at); err != nil {
					return err
				}
				if base == cbase {
					ct = append(ct, time.Since(t0).Seconds())
				} else {
					pt = append(pt, time.Since(t0).Seconds())
				}
			}
		}
		r := median(ct) / median(pt)
		ratios = append(ratios, r)
		b.add("PromQL "+q, "same answer, ≤ 1.2× Prometheus", fmt.Sprintf("cairn %.2f ms, Prometheus %.2f ms: %.2f× (%d series in the answer; %s)", median(ct)*1e3, median(pt)*1e3, r, len(ca), map[bool]string{true: "same answer", false: "ANSWERS DIFFER"}[same]), ptr(same && r <= 1.2))
	}
	b.add(fmt.Sprintf("PromQL, median ratio over %d queries (%.0f series scraped by both for %s)", len(benchQueries), series, dur), "≤ 1.2×", fmt.Sprintf("%.2f×, answers %s", median(ratios), map[bool]string{true: "agree", false: "differ"}[agree]), ptr(agree && median(ratios) <= 1.2))

	return runStatsdFlood(ctx, b, c, cbase)
}

// runStatsdFlood sends DogStatsD packets as fast as one UDP socket can for
// a while and reads back what the daemon counted.
func runStatsdFlood(ctx context.Context, b *bench, c *client.Client, cbase string) error {
	res, err := c.Do(ctx, "metrics status")
	if err != nil {
		return err
	}
	var st struct {
		Statsd string `json:"statsd"`
	}
	if len(res.Rows) == 0 || json.Unmarshal(res.Rows[0], &st) != nil {
		return fmt.Errorf("metrics status answered %v", res.Rows)
	}
	conn, err := net.Dial("udp", st.Statsd)
	if err != nil {
		return err
	}
	defer conn.Close()
	n := 1_000_000
	if b.cfg.quick {
		n = 200_000
	}
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = []byte(fmt.Sprintf("bench.flood:%d|c|#shard:%d\nbench.lat:%d|ms|#shard:%d", i, i%8, i, i%8))
	}
	t0 := time.Now()
	for i := range n {
		conn.Write(pkts[i%len(pkts)])
	}
	sendFor := time.Since(t0)
	// The daemon's own count, read from /metrics once it stops moving.
	var got float64
	for prev := -1.0; ; {
		time.Sleep(300 * time.Millisecond)
		got, err = scrapeValue(cbase+"/metrics", "cairn_statsd_packets_total")
		if err != nil {
			return err
		}
		if got == prev {
			break
		}
		prev = got
	}
	kernel, _ := scrapeValue(cbase+"/metrics", "cairn_statsd_kernel_drops_total")
	sent := float64(n)
	r := got / sendFor.Seconds()
	b.add(fmt.Sprintf("DogStatsD over loopback UDP, %d packets of 2 lines from one socket (daemon)", n), "≥ 200k packets/s",
		fmt.Sprintf("%.0fk packets/s received (%.1f%% of %.0fk/s sent for %s); drops counted by cairn_statsd_kernel_drops_total: %.0f (%.1f%% of sent)", r/1e3, 100*got/sent, sent/sendFor.Seconds()/1e3, sendFor.Round(time.Millisecond), kernel, 100*kernel/sent), ptr(r >= 200_000))
	return nil
}

// promAnswer is one series of an instant query's vector, or a scalar.
type promAnswer map[string]float64 // labels as text -> value

func queryAnswer(base, q string, at time.Time) (promAnswer, error) {
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/query?query=%s&time=%.3f", base, url.QueryEscape(q), float64(at.UnixMilli())/1000))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	out := promAnswer{}
	for _, s := range r.Data.Result {
		keys := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			if k == "instance" {
				continue // each scraper names the target its own way
			}
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out[strings.Join(keys, ",")] = v
	}
	return out, nil
}

// sameAnswers compares two answers series by series, to a relative 1e-3:
// each scraper stamps a sample with its scrape's start while the target
// computes the value (linear in the wall clock) a moment later, and that
// moment differs between the two by up to a millisecond or so, which
// moves a 30s rate in its fifth digit.
func sameAnswers(a, b promAnswer) (bool, string) {
	if len(a) != len(b) {
		return false, fmt.Sprintf("%d series against %d", len(a), len(b))
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return false, "no " + k
		}
		if math.Abs(va-vb) > 1e-3*math.Max(1e-9, math.Abs(vb)) {
			return false, fmt.Sprintf("%s: %g against %g", k, va, vb)
		}
	}
	return true, ""
}

func instantSum(base, q string, at time.Time) (float64, error) {
	a, err := queryAnswer(base, q, at)
	if err != nil {
		return 0, err
	}
	var s float64
	for _, v := range a {
		s += v
	}
	return s, nil
}

// scrapeValue reads one sample of a text-format page.
func scrapeValue(u, series string) (float64, error) {
	v, err := scrapeValues(u, series)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// scrapeValues reads several series from one GET of u, in their order, as
// scrapeValue reads one.
func scrapeValues(u string, series ...string) ([]float64, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(series))
	for _, l := range strings.Split(string(body), "\n") {
		for i, name := range series {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				if out[i], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}
