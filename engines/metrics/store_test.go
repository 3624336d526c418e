package metrics

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

func openTestStore(t *testing.T, dir string, maxSamples int) *Store {
	t.Helper()
	s, err := OpenStore(StoreOptions{Dir: dir, MaxSamples: maxSamples})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFamilySamples: what a Gatherer gives becomes the series a scrape of
// its text format would, histograms as _bucket{le}, _sum and _count.
func TestFamilySamples(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "jobs"}, []string{"kind"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lat_seconds", Help: "latency", Buckets: []float64{0.1, 1}})
	reg.MustRegister(c, h)
	c.WithLabelValues("a").Add(3)
	h.Observe(0.05)
	h.Observe(0.5)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range FamilySamples(mfs, map[string]string{"job": "j"}) {
		got = append(got, s.Labels.String()+" "+formatFloat(s.Value))
	}
	want := []string{
		`{__name__="jobs_total", job="j", kind="a"} 3`,
		`{__name__="lat_seconds_bucket", job="j", le="+Inf"} 2`,
		`{__name__="lat_seconds_bucket", job="j", le="0.1"} 1`,
		`{__name__="lat_seconds_bucket", job="j", le="1"} 2`,
		`{__name__="lat_seconds_count", job="j"} 2`,
		`{__name__="lat_seconds_sum", job="j"} 0.55`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("samples:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStoreQueryAndReopen: samples appended are queried with PromQL
// (rate over a counter), survive a close and reopen (the WAL), and a query
// over query.max-samples is refused naming the limit.
func TestStoreQueryAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, 1000)
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	ls := labels.FromStrings("__name__", "req_total", "job", "x")
	for i := range 61 {
		if _, _, err := AppendSamples(ctx, s.DB, t0.Add(time.Duration(i)*time.Second).UnixMilli(), []Sample{{Labels: ls, Value: float64(2 * i)}}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Instant(ctx, "rate(req_total[1m])", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	vec := v.(promql.Vector)
	if len(vec) != 1 || math.Abs(vec[0].F-2) > 1e-9 {
		t.Fatalf("rate = %v, want 2/s", vec)
	}
	// A daemon killed before the head is cut: the samples live in the WAL.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, 10)
	defer s.Close()
	v, err = s.Instant(ctx, "req_total", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if vec := v.(promql.Vector); len(vec) != 1 || vec[0].F != 120 {
		t.Fatalf("after reopen: %v", vec)
	}
	_, err = s.Range(ctx, "req_total", t0, t0.Add(time.Minute), time.Second)
	var tooMany *ErrTooManySamples
	if !errors.As(err, &tooMany) || !strings.Contains(err.Error(), "query.max-samples") || !strings.Contains(err.Error(), "10 samples") {
		t.Fatalf("a range of 61 points with max-samples 10: %v", err)
	}
}

// TestPromQLPosition: a PromQL syntax error points into the statement,
// past the quote that opens the expression.
func TestPromQLPosition(t *testing.T) {
	m := &module{store: openTestStore(t, t.TempDir(), 0)}
	defer m.store.Close()
	w := dsl.Word{Text: "sum(rate(x[1m])", Quoted: true, Pos: dsl.Pos{Line: 1, Col: 15}}
	_, err := m.parseExpr(w)
	var pe *engines.PosError
	if !errors.As(err, &pe) || pe.Pos.Line != 1 || pe.Pos.Col <= 16 || !strings.Contains(pe.Msg, "PromQL") {
		t.Fatalf("parse error %#v", err)
	}
	w = dsl.Word{Text: "x +* y", Quoted: true, Pos: dsl.Pos{Line: 1, Col: 15}}
	_, err = m.parseExpr(w)
	if !errors.As(err, &pe) || pe.Pos.Col != 15+1+3 {
		t.Fatalf("`x +* y` error at %v (%v), want col 19, the `*`", pe.Pos, err)
	}
}

func TestSparkline(t *testing.T) {
	if got := Sparkline([]float64{0, 1, 2, 3, 4, 5, 6, 7}); got != "▁▂▃▄▅▆▇█" {
		t.Errorf("ramp: %q", got)
	}
	if got := Sparkline([]float64{3, 3, math.NaN()}); got != "▅▅ " {
		t.Errorf("flat with a gap: %q", got)
	}
}

// TestLintedFamilies: a family promtool's linter flags stays off /metrics.
func TestLintedFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "good_bytes", Help: "fine"}),
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_histogram_series", Help: "names a type it is not"}),
		prometheus.NewCounter(prometheus.CounterOpts{Name: "no_suffix", Help: "a counter without _total"}),
	)
	mfs, _ := reg.Gather()
	var names []string
	for _, mf := range LintedFamilies(mfs) {
		names = append(names, mf.GetName())
	}
	if strings.Join(names, ",") != "good_bytes" {
		t.Errorf("kept %v", names)
	}
}
