package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/journal"
)

// journalCollector exposes each journal stream's size: its last durable
// seq, how many events it holds, and its bytes on disk.
type journalCollector struct {
	j                    *journal.Journal
	lastSeq, events, byt *prometheus.Desc
}

func newJournalCollector(j *journal.Journal) *journalCollector {
	return &journalCollector{
		j:       j,
		lastSeq: prometheus.NewDesc("cairn_journal_appended_events_total", "Events ever appended to the stream: its last durable seq.", []string{"stream"}, nil),
		events:  prometheus.NewDesc("cairn_journal_events", "How many events the stream holds now (after retention).", []string{"stream"}, nil),
		byt:     prometheus.NewDesc("cairn_journal_disk_bytes", "The stream's disk usage, as pebble counts it.", []string{"stream"}, nil),
	}
}

func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSeq
	ch <- c.events
	ch <- c.byt
}

func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.j.Names() {
		s := c.j.Stream(name)
		if s == nil {
			continue
		}
		st := s.Stats()
		// last_seq only grows: a counter, so rate() gives appends/s.
		ch <- prometheus.MustNewConstMetric(c.lastSeq, prometheus.CounterValue, float64(st.LastSeq), name)
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(st.Events), name)
		ch <- prometheus.MustNewConstMetric(c.byt, prometheus.GaugeValue, float64(st.Bytes), name)
	}
}
