package metrics

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// metricMonitor is a Datadog-style metric monitor: a PromQL query
// evaluated every interval, each series it returns at a level (OK,
// warning, critical) by the monitor's thresholds, and the monitor as a
// whole in no data once the query has returned nothing for noData.
type metricMonitor struct {
	def    AlertDef
	th     Thresholds
	noData time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// series are the series not at OK, by label set.
	series map[string]*monitorSeries
	// lastData is when the query last returned a series (the monitor's
	// start before it ever did).
	lastData time.Time
	nodata   bool
	// lastErr is the last evaluation's error, for alerts.
	lastErr string
}

type monitorSeries struct {
	Level  Level
	Labels map[string]string
	Value  float64
	Since  time.Time
}

// seriesValue is one series of a query's answer.
type seriesValue struct {
	Labels labels.Labels
	Value  float64
}

func newMetricMonitor(d AlertDef, start time.Time) *metricMonitor {
	mo := &metricMonitor{def: d, th: d.thresholds(), series: map[string]*monitorSeries{}, lastData: start, done: make(chan struct{})}
	if d.NoData != "" {
		if v, err := model.ParseDuration(d.NoData); err == nil {
			mo.noData = time.Duration(v)
		}
	}
	return mo
}

// step is the pure core: the query answered vec at now; it moves each
// series to its level and the monitor into or out of no data, and
// returns the transitions. A series that is gone resolves, unless the
// monitor watches for no data: then the states hold until the query has
// been empty for noData, when the monitor as a whole goes to no data.
func (mo *metricMonitor) step(now time.Time, vec []seriesValue) []Transition {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	var out []Transition
	if len(vec) == 0 && mo.noData > 0 {
		if !mo.nodata && now.Sub(mo.lastData) >= mo.noData {
			mo.nodata = true
			clear(mo.series)
			out = append(out, Transition{Kind: KindAlertNoData, Rule: mo.def.Name, Expr: mo.def.Expr, Labels: withAlertname(mo.def.Labels, mo.def.Name),
				Annotations: mo.def.Annotations, ActiveAt: now, FiredAt: now, Level: "nodata", NoDataFor: mo.def.NoData, LastData: mo.lastData})
		}
		return out
	}
	if len(vec) > 0 {
		mo.lastData = now
		if mo.nodata {
			mo.nodata = false
			out = append(out, Transition{Kind: KindAlertResolved, Rule: mo.def.Name, Expr: mo.def.Expr, Labels: withAlertname(mo.def.Labels, mo.def.Name),
				Annotations: mo.def.Annotations, From: "nodata"})
		}
	}
	seen := map[string]bool{}
	var trs []Transition
	for _, sv := range vec {
		lbls := mo.instanceLabels(sv.Labels)
		key := labels.FromMap(lbls).String()
		seen[key] = true
		cur := LevelOK
		s := mo.series[key]
		if s != nil {
			cur = s.Level
			s.Value = sv.Value
		}
		next := mo.th.Next(cur, sv.Value)
		if next == cur {
			continue
		}
		tr := Transition{Rule: mo.def.Name, Expr: mo.def.Expr, Labels: lbls, Annotations: mo.def.Annotations, Value: sv.Value}
		switch next {
		case LevelOK:
			delete(mo.series, key)
			tr.Kind, tr.From, tr.ActiveAt = KindAlertResolved, cur.String(), s.Since
		default:
			if s == nil {
				s = &monitorSeries{Labels: lbls, Value: sv.Value, Since: now}
				mo.series[key] = s
			}
			s.Level = next
			th := mo.th.threshold(next)
			tr.Kind, tr.Level, tr.Threshold, tr.ActiveAt, tr.FiredAt = KindAlertFiring, "critical", &th, s.Since, now
			if next == LevelWarning {
				tr.Kind, tr.Level = KindAlertWarning, "warning"
			}
			if cur != LevelOK {
				tr.From = cur.String()
			}
		}
		trs = append(trs, tr)
	}
	for key, s := range mo.series {
		if seen[key] {
			continue
		}
		delete(mo.series, key)
		trs = append(trs, Transition{Kind: KindAlertResolved, Rule: mo.def.Name, Expr: mo.def.Expr, Labels: s.Labels, Annotations: mo.def.Annotations, Value: s.Value, ActiveAt: s.Since, From: s.Level.String()})
	}
	sort.SliceStable(trs, func(i, j int) bool {
		return labels.FromMap(trs[i].Labels).String() < labels.FromMap(trs[j].Labels).String()
	})
	return append(out, trs...)
}

// resolveAll resolves every series not at OK, and the no data, of a
// monitor being stopped.
func (mo *metricMonitor) resolveAll() []Transition {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	var out []Transition
	if mo.nodata {
		mo.nodata = false
		out = append(out, Transition{Kind: KindAlertResolved, Rule: mo.def.Name, Expr: mo.def.Expr, Labels: withAlertname(mo.def.Labels, mo.def.Name), Annotations: mo.def.Annotations, From: "nodata"})
	}
	for key, s := range mo.series {
		delete(mo.series, key)
		out = append(out, Transition{Kind: KindAlertResolved, Rule: mo.def.Name, Expr: mo.def.Expr, Labels: s.Labels, Annotations: mo.def.Annotations, Value: s.Value, ActiveAt: s.Since, From: s.Level.String()})
	}
	return out
}

// instanceLabels are a series' labels as its alert's: the metric name
// dropped, the definition's labels and alertname added, as Prometheus
// labels an alert.
func (mo *metricMonitor) instanceLabels(l labels.Labels) map[string]string {
	out := l.Map()
	delete(out, model.MetricNameLabel)
	for k, v := range mo.def.Labels {
		out[k] = v
	}
	out[model.AlertNameLabel] = mo.def.Name
	return out
}

// state is the monitor's state as alerts shows it: nodata, or its worst
// series' level.
func (mo *metricMonitor) state() (string, []AlertInstance) {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	if mo.nodata {
		return "nodata", nil
	}
	worst := LevelOK
	var active []AlertInstance
	for _, s := range mo.series {
		worst = max(worst, s.Level)
		active = append(active, AlertInstance{Labels: s.Labels, State: s.Level.String(), Value: s.Value, ActiveAt: s.Since})
	}
	sort.Slice(active, func(i, j int) bool {
		return labels.FromMap(active[i].Labels).String() < labels.FromMap(active[j].Labels).String()
	})
	return worst.String(), active
}

// describeMonitor is a monitor as alerts shows its expression.
func (d AlertDef) describeMonitor() string {
	op := ">"
	if d.Below {
		op = "<"
	}
	num := func(f *float64) string { return strconv.FormatFloat(*f, 'g', -1, 64) }
	parts := []string{d.Expr}
	if d.Critical != nil {
		parts = append(parts, "critical"+op+num(d.Critical))
	}
	if d.Warning != nil {
		parts = append(parts, "warning"+op+num(d.Warning))
	}
	if d.CriticalRecovery != nil {
		parts = append(parts, "critical-recovery="+num(d.CriticalRecovery))
	}
	if d.WarningRecovery != nil {
		parts = append(parts, "warning-recovery="+num(d.WarningRecovery))
	}
	if d.NoData != "" {
		parts = append(parts, "no-data="+d.NoData)
	}
	return strings.Join(parts, " ")
}

// run evaluates the query every tick until ctx ends, calling emit with
// each evaluation's transitions. A query that fails (a limit, a timeout)
// changes nothing: it is not an empty answer.
func (mo *metricMonitor) run(ctx context.Context, st *Store, tick time.Duration, emit func([]Transition)) {
	defer close(mo.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		vec, err := monitorQuery(ctx, st, mo.def.Expr, now)
		mo.mu.Lock()
		mo.lastErr = ""
		if err != nil {
			mo.lastErr = err.Error()
		}
		mo.mu.Unlock()
		if err != nil {
			continue
		}
		if trs := mo.step(now, vec); len(trs) > 0 {
			emit(trs)
		}
	}
}

// monitorQuery evaluates expr at now as a set of series: a vector's
// series, a scalar as one series without labels. NaN values are no data.
func monitorQuery(ctx context.Context, st *Store, expr string, now time.Time) ([]seriesValue, error) {
	v, err := st.Instant(ctx, expr, now)
	if err != nil {
		return nil, err
	}
	var out []seriesValue
	switch v := v.(type) {
	case promql.Vector:
		for _, s := range v {
			if s.H != nil || math.IsNaN(s.F) {
				continue
			}
			out = append(out, seriesValue{Labels: s.Metric, Value: s.F})
		}
	case promql.Scalar:
		if !math.IsNaN(v.V) {
			out = append(out, seriesValue{Labels: labels.EmptyLabels(), Value: v.V})
		}
	default:
		return nil, fmt.Errorf("a monitor's query must answer a vector or a scalar, not a %s", v.Type())
	}
	return out, nil
}
