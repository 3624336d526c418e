package metrics

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

func (m *module) Verbs() []engines.Verb {
	verbs := append(m.alertVerbs(), m.metricsVerbs()...)
	verbs = append(verbs, m.scrapeVerbs()...)
	slices.SortFunc(verbs, func(a, b engines.Verb) int { return strings.Compare(a.Verb, b.Verb) })
	return verbs
}

func (m *module) metricsVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "metrics query",
			Access:  dsl.AccessRead,
			Summary: "evaluate a PromQL expression at one time",
			Help: "metrics query 'PROMQL' [at=T] evaluates the expression on the metrics TSDB (now, or at T) and answers a row\n" +
				"per series: its labels and value, as Prometheus's /api/v1/query does.\n\n" +
				"  metrics query 'rate(container_cpu_usage_seconds_total[1m])'\n  metrics query 'up' at=10m",
			Args:    []dsl.Arg{{Name: "PROMQL", Required: true, Help: "the PromQL expression"}},
			Options: []dsl.Option{{Name: "at", Kind: dsl.Time, Help: "evaluation time (default now)"}},
		}, Run: m.runQuery},
		{Spec: dsl.Spec{
			Verb:    "metrics range",
			Access:  dsl.AccessRead,
			Summary: "evaluate a PromQL expression over a time range",
			Help: "metrics range 'PROMQL' since=1h [until=T] [step=D] answers a row per series with its values from since to until\n" +
				"(default now) every step (default: the range over 60 points), and a sparkline of them.\n\n" +
				"  metrics range 'sum by (name) (rate(container_cpu_usage_seconds_total[1m]))' since=30m step=1m",
			Args: []dsl.Arg{{Name: "PROMQL", Required: true, Help: "the PromQL expression"}},
			Options: []dsl.Option{
				{Name: "since", Kind: dsl.Time, Help: "start of the range (default 1h)"},
				{Name: "until", Kind: dsl.Time, Help: "end of the range (default now)"},
				{Name: "step", Kind: dsl.Duration, Help: "resolution (default: the range over 60 points)"},
			},
		}, Run: m.runRange},
		{Spec: dsl.Spec{
			Verb:    "metrics series",
			Access:  dsl.AccessRead,
			Summary: "list the series the metrics TSDB holds",
			Help: "metrics series [match='{SELECTOR}']… [since=1h] answers a row per series (its labels) that has samples\n" +
				"since then, as Prometheus's /api/v1/series does; without match=, every series.\n\n" +
				"  metrics series match='{__name__=~\"node_.*\"}'",
			Options: []dsl.Option{
				{Name: "match", Repeatable: true, Meta: "SELECTOR", Help: "a series selector; several are a union"},
				{Name: "since", Kind: dsl.Time, Help: "only series with samples since (default 1h)"},
				{Name: "limit", Kind: dsl.Int, Help: "at most N rows"},
			},
		}, Run: m.runSeries},
		{Spec: dsl.Spec{
			Verb:    "metrics status",
			Access:  dsl.AccessRead,
			Summary: "the metrics engine: its TSDB, listeners and collection",
			Help:    "metrics status answers one row: the TSDB's directory, head series and time range, retention, the\ncollection interval, the DogStatsD listener's bound address, and the query limits.",
		}, Run: m.runStatus},
	}
}

// StatusRow is what metrics status answers.
type StatusRow struct {
	TSDB           string    `json:"tsdb"`
	HeadSeries     uint64    `json:"head_series"`
	MinTime        time.Time `json:"min_time"`
	MaxTime        time.Time `json:"max_time"`
	Retention      string    `json:"retention"`
	RetentionBytes int64     `json:"retention_bytes"`
	Interval       string    `json:"interval"`
	Statsd         string    `json:"statsd"`
	MaxSamples     int       `json:"query_max_samples"`
}

func (m *module) runStatus(ctx context.Context, r engines.Request) error {
	head := m.store.DB.Head()
	row := StatusRow{
		TSDB: m.store.opts.Dir, HeadSeries: head.NumSeries(),
		Retention: m.retention.String(), RetentionBytes: m.retentionBytes,
		Interval: m.interval.String(), Statsd: m.statsdBound(), MaxSamples: m.maxSamples,
	}
	if head.NumSeries() > 0 {
		row.MinTime, row.MaxTime = time.UnixMilli(head.MinTime()), time.UnixMilli(head.MaxTime())
	}
	return r.Row(row)
}

// parseExpr parses the PROMQL argument, an error pointing at the place of
// the statement where PromQL's parser stopped.
func (m *module) parseExpr(w dsl.Word) (parser.Expr, error) {
	expr, err := m.store.Parser.ParseExpr(w.Text)
	if err == nil {
		return expr, nil
	}
	var perrs parser.ParseErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return nil, promqlPosError(w, &perrs[0])
	}
	var perr *parser.ParseErr
	if errors.As(err, &perr) {
		return nil, promqlPosError(w, perr)
	}
	return nil, engines.Errorf(wire.InvalidArgument, w, "PromQL: %v", err)
}

// promqlPosError places a PromQL parse error in the statement: the word's
// position, past its opening quote, plus the offset into the expression.
func promqlPosError(w dsl.Word, perr *parser.ParseErr) error {
	start := int(perr.PositionRange.Start)
	if start > len(w.Text) {
		start = len(w.Text)
	}
	pos := w.Pos
	if w.Quoted {
		pos.Col++
	}
	if nl := strings.LastIndexByte(w.Text[:start], '\n'); nl >= 0 {
		pos.Line += strings.Count(w.Text[:start], "\n")
		pos.Col = 1 + utf8.RuneCountInString(w.Text[nl+1:start])
	} else {
		pos.Col += utf8.RuneCountInString(w.Text[:start])
	}
	return &engines.PosError{Code: wire.InvalidArgument, Pos: pos, Msg: "PromQL: " + perr.Err.Error()}
}

// queryErr gives a failed evaluation its code: a query over
// query.max-samples is resource_exhausted, naming the limit.
func queryErr(err error) error {
	var tooMany *ErrTooManySamples
	if errors.As(err, &tooMany) {
		return wire.Errorf(wire.ResourceExhausted, "%v", err)
	}
	return wire.Errorf(wire.InvalidArgument, "PromQL: %v", err)
}

// SeriesRow is one series of an instant query's answer.
type SeriesRow struct {
	Metric map[string]string `json:"metric"`
	Value  float64           `json:"value"`
	Time   time.Time         `json:"time"`
}

// RangeRow is one series of a range query's answer.
type RangeRow struct {
	Metric map[string]string `json:"metric"`
	Spark  string            `json:"spark"`
	Last   float64           `json:"last"`
	Values [][2]float64      `json:"values"` // [unix seconds, value]
}

func (m *module) runQuery(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["PROMQL"]
	if _, err := m.parseExpr(w); err != nil {
		return err
	}
	at := time.Now()
	if o, ok := st.Opt("at"); ok {
		t, err := o.Time(at)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, o, "at=: %v", err)
		}
		at = t
	}
	v, err := m.store.Instant(ctx, w.Text, at)
	if err != nil {
		return queryErr(err)
	}
	switch v := v.(type) {
	case promql.Vector:
		for _, s := range v {
			if err := r.Row(SeriesRow{Metric: s.Metric.Map(), Value: sampleValue(s), Time: time.UnixMilli(s.T)}); err != nil {
				return err
			}
		}
	case promql.Scalar:
		return r.Row(SeriesRow{Metric: map[string]string{}, Value: v.V, Time: time.UnixMilli(v.T)})
	case promql.Matrix:
		for _, s := range v {
			row := RangeRow{Metric: s.Metric.Map()}
			for _, p := range s.Floats {
				row.Values = append(row.Values, [2]float64{float64(p.T) / 1000, p.F})
			}
			row.fill()
			if err := r.Row(row); err != nil {
				return err
			}
		}
	case promql.String:
		return r.Row(map[string]any{"value": v.V, "time": time.UnixMilli(v.T)})
	}
	return nil
}

func sampleValue(s promql.Sample) float64 {
	if s.H != nil {
		return s.H.Count
	}
	return s.F
}

func (m *module) runRange(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["PROMQL"]
	if _, err := m.parseExpr(w); err != nil {
		return err
	}
	now := time.Now()
	start, end := now.Add(-time.Hour), now
	if o, ok := st.Opt("since"); ok {
		t, err := o.Time(now)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, o, "since=: %v", err)
		}
		start = t
	}
	if o, ok := st.Opt("until"); ok {
		t, err := o.Time(now)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, o, "until=: %v", err)
		}
		end = t
	}
	if !end.After(start) {
		return wire.Errorf(wire.InvalidArgument, "since= must be before until=")
	}
	step := end.Sub(start) / 60
	if o, ok := st.Opt("step"); ok {
		d, err := o.Duration()
		if err != nil || d <= 0 {
			return engines.Errorf(wire.InvalidArgument, o, "step=: a positive duration, such as 15s")
		}
		step = d
	}
	if step < time.Millisecond {
		step = time.Millisecond
	}
	if end.Sub(start)/step > 11000 {
		// Prometheus's own bound on points per series.
		return wire.Errorf(wire.InvalidArgument, "the range over step= gives more than 11,000 points per series: choose a larger step=")
	}
	mat, err := m.store.Range(ctx, w.Text, start, end, step)
	if err != nil {
		return queryErr(err)
	}
	for _, s := range mat {
		row := RangeRow{Metric: s.Metric.Map()}
		for _, p := range s.Floats {
			row.Values = append(row.Values, [2]float64{float64(p.T) / 1000, p.F})
		}
		row.fill()
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// fill sets the sparkline and last value from the row's values.
func (row *RangeRow) fill() {
	vals := make([]float64, len(row.Values))
	for i, p := range row.Values {
		vals[i] = p[1]
	}
	row.Spark = Sparkline(vals)
	if len(vals) > 0 {
		row.Last = vals[len(vals)-1]
	}
}

// Sparkline draws values as a line of Unicode blocks, the lowest value
// the lowest block; NaN is a space. At most 60 values are drawn (the last).
func Sparkline(vals []float64) string {
	const blocks = "▁▂▃▄▅▆▇█"
	if len(vals) > 60 {
		vals = vals[len(vals)-60:]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	runes := []rune(blocks)
	var b strings.Builder
	for _, v := range vals {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(runes[len(runes)/2])
		default:
			b.WriteRune(runes[int(math.Round((v-lo)/(hi-lo)*float64(len(runes)-1)))])
		}
	}
	return b.String()
}

func (m *module) runSeries(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	now := time.Now()
	start := now.Add(-time.Hour)
	if o, ok := st.Opt("since"); ok {
		t, err := o.Time(now)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, o, "since=: %v", err)
		}
		start = t
	}
	limit := int64(0)
	if o, ok := st.Opt("limit"); ok {
		n, err := o.Int()
		if err != nil || n < 0 {
			return engines.Errorf(wire.InvalidArgument, o, "limit=: a number of rows")
		}
		limit = n
	}
	var sets [][]*labels.Matcher
	for _, w := range st.Options["match"] {
		ms, err := m.store.Parser.ParseMetricSelector(w.Text)
		if err != nil {
			var perrs parser.ParseErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				return promqlPosError(w, &perrs[0])
			}
			return engines.Errorf(wire.InvalidArgument, w, "match=: %v", err)
		}
		sets = append(sets, ms)
	}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")}}
	}
	q, err := m.store.DB.Querier(start.UnixMilli(), now.UnixMilli())
	if err != nil {
		return err
	}
	defer q.Close()
	seen := map[string]map[string]string{}
	hints := &storage.SelectHints{Start: start.UnixMilli(), End: now.UnixMilli(), Func: "series"}
	for _, ms := range sets {
		ss := q.Select(ctx, false, hints, ms...)
		for ss.Next() {
			l := ss.At().Labels()
			seen[l.String()] = l.Map()
		}
		if err := ss.Err(); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if limit > 0 && int64(i) >= limit {
			break
		}
		if err := r.Row(map[string]any{"metric": seen[k]}); err != nil {
			return err
		}
	}
	return nil
}
