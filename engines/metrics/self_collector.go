package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// selfCollector exposes cairn's own workings: each journal stream's
// commit latency (WAL write and fsync) and batch size, and how its live
// subscribers keep up; the socket's requests by verb (the daemon's
// engines.RequestsService); the capture sources' events and drops (the
// capture engine's service). A service that is not there (its engine not
// linked) leaves its metrics out.
type selfCollector struct {
	j        *journal.Journal
	services *engines.Services

	sync, batch, subs, buffered, lagged *prometheus.Desc
	reqs, reqErrs, reqDur               *prometheus.Desc
	capEvents, capDrops, capErrs        *prometheus.Desc
}

type requestCounter interface {
	Requests() []engines.RequestStat
}

type sourceCounter interface {
	SourceCounters() map[string]engines.SourceCounters
}

// captureSourcesService is the capture engine's (capture.SourcesService).
const captureSourcesService = "capture.sources"

func newSelfCollector(j *journal.Journal, services *engines.Services) *selfCollector {
	stream := []string{"stream"}
	return &selfCollector{j: j, services: services,
		sync:      prometheus.NewDesc("cairn_journal_sync_seconds", "How long each commit group took from pebble's batch apply to the end of its WAL fsync.", stream, nil),
		batch:     prometheus.NewDesc("cairn_journal_commit_events", "Events per commit group (one WAL write and fsync each).", stream, nil),
		subs:      prometheus.NewDesc("cairn_journal_subscribers", "Live subscriptions of the stream.", stream, nil),
		buffered:  prometheus.NewDesc("cairn_journal_subscriber_buffered_events", "The most events one live subscriber holds delivered and not yet read.", stream, nil),
		lagged:    prometheus.NewDesc("cairn_journal_subscriber_lagged_total", "Times a subscriber fell so far behind that it went back to reading from disk.", stream, nil),
		reqs:      prometheus.NewDesc("cairn_requests_total", "Statements the socket ran, by verb.", []string{"verb"}, nil),
		reqErrs:   prometheus.NewDesc("cairn_request_errors_total", "Statements the socket ran that failed, by verb.", []string{"verb"}, nil),
		reqDur:    prometheus.NewDesc("cairn_request_duration_seconds", "How long a statement took to answer, by verb (streams such as tail are not timed).", []string{"verb"}, nil),
		capEvents: prometheus.NewDesc("cairn_capture_events_total", "Events a capture source stored, by source (its current or last run).", []string{"source"}, nil),
		capDrops:  prometheus.NewDesc("cairn_capture_drops_total", "Events a capture source dropped (full buffer, failed append, the kernel's drops), by source.", []string{"source"}, nil),
		capErrs:   prometheus.NewDesc("cairn_capture_errors_total", "Errors of a capture source, by source.", []string{"source"}, nil),
	}
}

func (c *selfCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sync, c.batch, c.subs, c.buffered, c.lagged, c.reqs, c.reqErrs, c.reqDur, c.capEvents, c.capDrops, c.capErrs} {
		ch <- d
	}
}

func (c *selfCollector) Collect(ch chan<- prometheus.Metric) {
	if c.j != nil {
		for _, name := range c.j.Names() {
			s := c.j.Stream(name)
			if s == nil {
				continue
			}
			st := s.CommitStats()
			ch <- constHistogram(c.sync, st.Sync, name)
			ch <- constHistogram(c.batch, st.Batch, name)
			ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(st.Subscribers), name)
			ch <- prometheus.MustNewConstMetric(c.buffered, prometheus.GaugeValue, float64(st.MaxBuffered), name)
			ch <- prometheus.MustNewConstMetric(c.lagged, prometheus.CounterValue, float64(st.Lagged), name)
		}
	}
	if c.services == nil {
		return
	}
	if rc, err := engines.Lookup[requestCounter](c.services, engines.RequestsService); err == nil {
		for _, r := range rc.Requests() {
			ch <- prometheus.MustNewConstMetric(c.reqs, prometheus.CounterValue, float64(r.Count), r.Verb)
			ch <- prometheus.MustNewConstMetric(c.reqErrs, prometheus.CounterValue, float64(r.Errors), r.Verb)
			ch <- constHistogram(c.reqDur, r.Latency, r.Verb)
		}
	}
	if sc, err := engines.Lookup[sourceCounter](c.services, captureSourcesService); err == nil {
		counters := sc.SourceCounters()
		names := make([]string, 0, len(counters))
		for n := range counters {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			v := counters[n]
			ch <- prometheus.MustNewConstMetric(c.capEvents, prometheus.CounterValue, float64(v.Events), n)
			ch <- prometheus.MustNewConstMetric(c.capDrops, prometheus.CounterValue, float64(v.Drops), n)
			ch <- prometheus.MustNewConstMetric(c.capErrs, prometheus.CounterValue, float64(v.Errors), n)
		}
	}
}

func constHistogram(d *prometheus.Desc, h journal.HistogramSnapshot, label string) prometheus.Metric {
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, h.Buckets, label)
}
