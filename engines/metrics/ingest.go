package metrics

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
)

// This file turns what a client_golang Gatherer collects (cairn's own
// metrics, the host and container collectors, DogStatsD) into TSDB
// samples, as a Prometheus scrape of /metrics would: a histogram becomes
// its _bucket{le}, _sum and _count series, a summary its quantiles, _sum
// and _count.

// Sample is one series' value at one time, as ingest appends it.
type Sample struct {
	Labels labels.Labels
	Value  float64
}

// FamilySamples flattens metric families into samples, extra labels
// added to each (job, instance), sorted by labels.
func FamilySamples(mfs []*dto.MetricFamily, extra map[string]string) []Sample {
	var out []Sample
	var b labels.ScratchBuilder
	add := func(name string, m *dto.Metric, v float64, k, kv string) {
		b.Reset()
		b.Add(model.MetricNameLabel, name)
		for _, lp := range m.GetLabel() {
			// An empty label is no label, as a scrape stores it (a
			// DogStatsD series without a tag its family has elsewhere).
			if lp.GetValue() != "" {
				b.Add(lp.GetName(), lp.GetValue())
			}
		}
		for k, v := range extra {
			b.Add(k, v)
		}
		if k != "" {
			b.Add(k, kv)
		}
		b.Sort()
		out = append(out, Sample{Labels: b.Labels(), Value: v})
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue(), "", "")
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue(), "", "")
			case dto.MetricType_UNTYPED:
				add(name, m, m.GetUntyped().GetValue(), "", "")
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				inf := false
				for _, bk := range h.GetBucket() {
					if math.IsInf(bk.GetUpperBound(), +1) {
						inf = true
					}
					add(name+"_bucket", m, float64(bk.GetCumulativeCount()), model.BucketLabel, formatFloat(bk.GetUpperBound()))
				}
				if !inf {
					add(name+"_bucket", m, float64(h.GetSampleCount()), model.BucketLabel, "+Inf")
				}
				add(name+"_sum", m, h.GetSampleSum(), "", "")
				add(name+"_count", m, float64(h.GetSampleCount()), "", "")
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, m, q.GetValue(), model.QuantileLabel, formatFloat(q.GetQuantile()))
				}
				add(name+"_sum", m, s.GetSampleSum(), "", "")
				add(name+"_count", m, float64(s.GetSampleCount()), "", "")
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels, out[j].Labels) < 0 })
	return out
}

// formatFloat writes a bucket bound or quantile as the text format does.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// AppendSamples appends samples at t (ms) in one TSDB commit. A sample the
// TSDB refuses (out of order, a duplicate at one time) is counted and
// skipped, as a scrape does; other errors roll the batch back.
func AppendSamples(ctx context.Context, db storage.Appendable, t int64, samples []Sample) (appended, skipped int, err error) {
	app := db.Appender(ctx)
	for _, s := range samples {
		if _, err := app.Append(0, s.Labels, t, s.Value); err != nil {
			if isSoftAppendError(err) {
				skipped++
				continue
			}
			_ = app.Rollback()
			return 0, 0, fmt.Errorf("append %s: %w", s.Labels, err)
		}
		appended++
	}
	if err := app.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit samples: %w", err)
	}
	return appended, skipped, nil
}

func isSoftAppendError(err error) bool {
	switch err {
	case storage.ErrOutOfOrderSample, storage.ErrOutOfBounds, storage.ErrDuplicateSampleForTimestamp, storage.ErrTooOldSample:
		return true
	}
	return false
}

// metadataStore is the help and type of the families a gatherer last
// gave, as /api/v1/metadata answers them (Prometheus keeps the same per
// scrape target).
type metadataStore struct {
	mu sync.RWMutex
	m  map[string]scrape.MetricMetadata
}

var _ scrape.MetricMetadataStore = (*metadataStore)(nil)

func (s *metadataStore) update(mfs []*dto.MetricFamily) {
	m := make(map[string]scrape.MetricMetadata, len(mfs))
	for _, mf := range mfs {
		m[mf.GetName()] = scrape.MetricMetadata{
			MetricFamily: mf.GetName(),
			Type:         metricType(mf.GetType()),
			Help:         mf.GetHelp(),
			Unit:         mf.GetUnit(),
		}
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

func metricType(t dto.MetricType) model.MetricType {
	switch t {
	case dto.MetricType_COUNTER:
		return model.MetricTypeCounter
	case dto.MetricType_GAUGE:
		return model.MetricTypeGauge
	case dto.MetricType_HISTOGRAM:
		return model.MetricTypeHistogram
	case dto.MetricType_GAUGE_HISTOGRAM:
		return model.MetricTypeGaugeHistogram
	case dto.MetricType_SUMMARY:
		return model.MetricTypeSummary
	}
	return model.MetricTypeUnknown
}

func (s *metadataStore) ListMetadata() []scrape.MetricMetadata {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]scrape.MetricMetadata, 0, len(s.m))
	for _, md := range s.m {
		out = append(out, md)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MetricFamily < out[j].MetricFamily })
	return out
}

func (s *metadataStore) GetMetadata(name string) (scrape.MetricMetadata, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	md, ok := s.m[name]
	return md, ok
}

func (s *metadataStore) SizeMetadata() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, md := range s.m {
		n += len(md.MetricFamily) + len(md.Help) + len(md.Unit)
	}
	return n
}

func (s *metadataStore) LengthMetadata() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}
