package metrics

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// lintedGatherer is what /metrics serves: every family of g that
// promtool's linter (promlint, the code of `promtool check metrics`)
// passes. Prometheus 3's own components name a few families against its
// conventions (prometheus_engine_query_duration_histogram_seconds): those
// stay in cairn's TSDB, queryable through the API, but off /metrics, so
// a scraper's lint finds no problem.
type lintedGatherer struct{ g prometheus.Gatherer }

func (l lintedGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	return LintedFamilies(mfs), err
}

// LintedFamilies returns the families promlint finds no problem with.
func LintedFamilies(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	l := promlint.NewWithMetricFamilies(mfs)
	l.AddCustomValidations(lintTypeInName)
	problems, err := l.Lint()
	if err != nil || len(problems) == 0 {
		return mfs
	}
	bad := map[string]bool{}
	for _, p := range problems {
		bad[p.Metric] = true
	}
	out := mfs[:0:0]
	for _, mf := range mfs {
		if !bad[mf.GetName()] {
			out = append(out, mf)
		}
	}
	return out
}

// lintTypeInName is the rule of promtool's linter in the Prometheus 2.x
// that Debian ships, which client_golang's promlint applies to histograms
// only: no family names a metric type it is not.
func lintTypeInName(mf *dto.MetricFamily) []error {
	for _, typ := range []string{"counter", "gauge", "histogram", "summary"} {
		if strings.Contains(mf.GetName(), typ) {
			return []error{fmt.Errorf("metric name should not include type '%s'", typ)}
		}
	}
	return nil
}
