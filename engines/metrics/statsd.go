package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/journal"
)

// The DogStatsD server: a UDP listener (--statsd) whose metrics are
// aggregated here and gathered, with everything else, into the TSDB and
// /metrics; events (_e) and service checks (_sc) become capture-stream
// events. UDP input is observation only: it never changes anything.

// Kinds of the events DogStatsD messages become.
const (
	KindStatsdEvent        = "statsd.event"
	KindStatsdServiceCheck = "statsd.service_check"
)

// statsdTimerBuckets are the buckets of timers (ms, observed in seconds),
// Prometheus's defaults; statsdValueBuckets those of histograms and
// distributions, whose unit is the sender's.
var (
	statsdTimerBuckets = prometheus.DefBuckets
	statsdValueBuckets = decadeBuckets(-3, 6)
)

// decadeBuckets are 1, 2.5 and 5 times each power of ten from 10^lo to
// 10^hi.
func decadeBuckets(lo, hi int) []float64 {
	var b []float64
	for e := lo; e <= hi; e++ {
		p := math.Pow10(e)
		b = append(b, p, 2.5*p, 5*p)
	}
	return b
}

// statsdAgg aggregates DogStatsD metrics into Prometheus series: a
// counter (c) is a cumulative name_total, a gauge (g) a gauge, a timer
// (ms) a histogram in seconds, a histogram (h) or distribution (d) a
// histogram, a set (s) a gauge of the distinct members seen in the last
// flush interval. Tags are labels. It is a prometheus.Collector.
type statsdAgg struct {
	mu        sync.Mutex
	maxSeries int
	series    map[string]*statsdSeries
	families  map[string]*statsdFamily

	packets  prometheus.Counter
	messages *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

type statsdFamily struct {
	typ    string // c, g, ms, h, d, s
	labels map[string]bool
}

type statsdSeries struct {
	family  string
	labels  map[string]string
	value   float64
	buckets []float64 // cumulative per bound of the family's buckets (histograms)
	count   uint64
	sum     float64
	set     map[string]struct{}
	setLast int
}

func newStatsdAgg(maxSeries int) *statsdAgg {
	return &statsdAgg{
		maxSeries: maxSeries,
		series:    map[string]*statsdSeries{},
		families:  map[string]*statsdFamily{},
		packets:   prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_statsd_packets_total", Help: "DogStatsD datagrams received."}),
		messages:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_statsd_messages_total", Help: "DogStatsD messages received, by type (c g ms h d s event service_check)."}, []string{"type"}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_statsd_dropped_total", Help: "DogStatsD messages dropped, by reason: parse, type_conflict, series_limit, event_queue."}, []string{"reason"}),
	}
}

// familyName is the Prometheus family a DogStatsD metric goes to.
func familyName(m *StatsdMetric) string {
	n := promName(m.Name)
	if m.Type == "c" && !strings.HasSuffix(n, "_total") {
		n += "_total"
	}
	return n
}

// Add aggregates one metric message; false and a reason when dropped.
func (a *statsdAgg) Add(m *StatsdMetric) (ok bool, reason string) {
	fam := familyName(m)
	lbls := map[string]string{}
	for _, t := range m.Tags {
		if t.Value == "" {
			continue // a bare tag has no value to be a label's
		}
		k := labelName(t.Key)
		if k == "" || strings.HasPrefix(k, "__") || k == "le" || k == "quantile" {
			continue
		}
		lbls[k] = t.Value
	}
	key := seriesKey(fam, lbls)
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.families[fam]
	if ok && f.typ != m.Type {
		return false, "type_conflict"
	}
	s, ok := a.series[key]
	if !ok {
		if len(a.series) >= a.maxSeries {
			return false, "series_limit"
		}
		if f == nil {
			f = &statsdFamily{typ: m.Type, labels: map[string]bool{}}
			a.families[fam] = f
		}
		for k := range lbls {
			f.labels[k] = true
		}
		s = &statsdSeries{family: fam, labels: lbls}
		a.series[key] = s
	}
	switch m.Type {
	case "c":
		for _, v := range m.Values {
			s.value += v / m.Rate
		}
	case "g":
		for _, v := range m.Values {
			if m.GaugeDelta {
				s.value += v
			} else {
				s.value = v
			}
		}
	case "ms", "h", "d":
		bounds := statsdValueBuckets
		if m.Type == "ms" {
			bounds = statsdTimerBuckets
		}
		if s.buckets == nil {
			s.buckets = make([]float64, len(bounds))
		}
		// A sampled observation stands for 1/rate of them.
		n := 1 / m.Rate
		for _, v := range m.Values {
			if m.Type == "ms" {
				v /= 1000
			}
			for i, b := range bounds {
				if v <= b {
					s.buckets[i] += n
				}
			}
			s.count += uint64(n + 0.5)
			s.sum += v * n
		}
	case "s":
		if s.set == nil {
			s.set = map[string]struct{}{}
		}
		for _, v := range m.Set {
			s.set[v] = struct{}{}
		}
	}
	return true, ""
}

func seriesKey(fam string, lbls map[string]string) string {
	keys := make([]string, 0, len(lbls))
	for k := range lbls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fam)
	for _, k := range keys {
		b.WriteString("\xff" + k + "\xfe" + lbls[k])
	}
	return b.String()
}

// Flush ends a flush interval: sets report how many distinct members the
// interval saw, and start over.
func (a *statsdAgg) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.series {
		if s.set != nil {
			s.setLast = len(s.set)
			s.set = map[string]struct{}{}
		}
	}
}

// Describe describes nothing: the DogStatsD series are an unchecked
// collector's, their names and labels coming with the packets. The
// counters of packets, messages and drops are registered on their own
// (counters).
func (a *statsdAgg) Describe(ch chan<- *prometheus.Desc) {}

// counters are the aggregator's own counters, to register beside it.
func (a *statsdAgg) counters() []prometheus.Collector {
	return []prometheus.Collector{a.packets, a.messages, a.dropped}
}

func (a *statsdAgg) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	descs := map[string]*prometheus.Desc{}
	names := map[string][]string{}
	for fam, f := range a.families {
		ln := make([]string, 0, len(f.labels))
		for k := range f.labels {
			ln = append(ln, k)
		}
		sort.Strings(ln)
		names[fam] = ln
		descs[fam] = prometheus.NewDesc(fam, "DogStatsD metric ("+statsdTypeName(f.typ)+").", ln, nil)
	}
	for _, s := range a.series {
		f := a.families[s.family]
		lv := make([]string, len(names[s.family]))
		for i, k := range names[s.family] {
			lv[i] = s.labels[k]
		}
		d := descs[s.family]
		var m prometheus.Metric
		var err error
		switch f.typ {
		case "c":
			m, err = prometheus.NewConstMetric(d, prometheus.CounterValue, s.value, lv...)
		case "g":
			m, err = prometheus.NewConstMetric(d, prometheus.GaugeValue, s.value, lv...)
		case "s":
			m, err = prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(s.setLast), lv...)
		default:
			bounds := statsdValueBuckets
			if f.typ == "ms" {
				bounds = statsdTimerBuckets
			}
			bk := make(map[float64]uint64, len(bounds))
			for i, b := range bounds {
				if s.buckets != nil {
					bk[b] = uint64(s.buckets[i] + 0.5)
				}
			}
			m, err = prometheus.NewConstHistogram(d, s.count, s.sum, bk, lv...)
		}
		if err == nil {
			ch <- m
		}
	}
}

func statsdTypeName(t string) string {
	return map[string]string{"c": "count", "g": "gauge", "ms": "timer, seconds", "h": "histogram", "d": "distribution", "s": "set: distinct members per flush interval"}[t]
}

// statsdServer reads DogStatsD datagrams from conn.
type statsdServer struct {
	conn   net.PacketConn
	agg    *statsdAgg
	events chan *journal.Body
	node   string
	log    *slog.Logger
}

// serve reads until the connection is closed.
func (s *statsdServer) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("statsd: read", "err", err)
			}
			return
		}
		s.agg.packets.Inc()
		s.handle(string(buf[:n]), from)
	}
}

func (s *statsdServer) handle(pkt string, from net.Addr) {
	for _, line := range strings.Split(pkt, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		m, e, sc, err := ParseStatsdLine(line)
		switch {
		case err != nil:
			s.agg.dropped.WithLabelValues("parse").Inc()
		case m != nil:
			s.agg.messages.WithLabelValues(m.Type).Inc()
			if ok, reason := s.agg.Add(m); !ok {
				s.agg.dropped.WithLabelValues(reason).Inc()
			}
		case e != nil:
			s.agg.messages.WithLabelValues("event").Inc()
			s.emit(eventBody(e, s.node, from))
		case sc != nil:
			s.agg.messages.WithLabelValues("service_check").Inc()
			s.emit(serviceCheckBody(sc, s.node, from))
		}
	}
}

// emit queues an event for the journal; a full queue drops it, counted.
func (s *statsdServer) emit(b *journal.Body) {
	select {
	case s.events <- b:
	default:
		s.agg.dropped.WithLabelValues("event_queue").Inc()
	}
}

func tagData(tags []StatsdTag) map[string]any {
	m := map[string]any{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func statsdActor(from net.Addr) journal.Actor {
	a := journal.Actor{UID: -1, GID: -1, Via: "statsd"}
	if from != nil {
		a.Addr = from.String()
	}
	return a
}

func eventBody(e *StatsdEvent, node string, from net.Addr) *journal.Body {
	data := map[string]any{"title": e.Title, "text": e.Text, "priority": e.Priority, "alert_type": e.AlertType, "tags": tagData(e.Tags)}
	if e.Host != "" {
		data["host"] = e.Host
	}
	if e.Timestamp != 0 {
		data["timestamp"] = e.Timestamp
	}
	if e.AggregationKey != "" {
		data["aggregation_key"] = e.AggregationKey
	}
	if e.SourceType != "" {
		data["source_type"] = e.SourceType
	}
	return &journal.Body{Kind: KindStatsdEvent, Subject: e.Title, Node: node, Actor: statsdActor(from), Data: data}
}

func serviceCheckBody(sc *StatsdServiceCheck, node string, from net.Addr) *journal.Body {
	data := map[string]any{"name": sc.Name, "status": sc.Status, "status_name": statusName(sc.Status), "tags": tagData(sc.Tags)}
	if sc.Host != "" {
		data["host"] = sc.Host
	}
	if sc.Message != "" {
		data["message"] = sc.Message
	}
	if sc.Timestamp != 0 {
		data["timestamp"] = sc.Timestamp
	}
	return &journal.Body{Kind: KindStatsdServiceCheck, Subject: sc.Name, Node: node, Actor: statsdActor(from), Data: data}
}

// appendEvents writes queued DogStatsD events to the capture stream until
// ctx ends, a batch at a time.
func appendEvents(ctx context.Context, st *journal.Stream, events <-chan *journal.Body, log *slog.Logger) {
	for {
		var batch []*journal.Body
		select {
		case <-ctx.Done():
			return
		case b := <-events:
			batch = append(batch, b)
		}
	more:
		for len(batch) < 256 {
			select {
			case b := <-events:
				batch = append(batch, b)
			default:
				break more
			}
		}
		if _, err := st.Append(ctx, batch...); err != nil && ctx.Err() == nil {
			log.Warn("statsd: journal events", "err", err, "events", len(batch))
		}
	}
}

// listenStatsd binds addr (UDP).
func listenStatsd(addr string) (net.PacketConn, error) {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("--statsd %s: %w (choose another address with --statsd ADDR, or --statsd off)", addr, err)
	}
	if uc, ok := c.(*net.UDPConn); ok {
		// A burst must not overflow the kernel's default buffer.
		_ = uc.SetReadBuffer(8 << 20)
	}
	return c, nil
}

// listenStatsdUnix binds a unix datagram socket at path (Datadog's
// dogstatsd_socket), mode 0660. A socket file left by a dead daemon is
// replaced; one a live process answers on, or a path that is not a
// socket, is refused.
func listenStatsdUnix(path string) (net.PacketConn, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--statsd-socket %s: exists and is not a socket; remove it or choose another path", path)
		}
		if c, err := net.Dial("unixgram", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("--statsd-socket %s: a live process listens on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("--statsd-socket %s: %w", path, err)
		}
	}
	c, err := net.ListenPacket("unixgram", path)
	if err != nil {
		return nil, fmt.Errorf("--statsd-socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		c.Close()
		return nil, fmt.Errorf("--statsd-socket %s: %w", path, err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.SetReadBuffer(8 << 20)
	}
	return c, nil
}
