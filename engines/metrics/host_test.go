package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestHostCollector: the host's numbers come under node_exporter's names,
// every source succeeds on this machine, and the families lint clean.
func TestHostCollector(t *testing.T) {
	hc, err := newHostCollector()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(hc)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, mf := range mfs {
		names[mf.GetName()] = len(mf.GetMetric())
	}
	for _, want := range []string{"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_load1", "node_filesystem_size_bytes", "node_network_receive_bytes_total", "node_disk_read_bytes_total", "node_boot_time_seconds"} {
		if names[want] == 0 {
			t.Errorf("no %s", want)
		}
	}
	for _, mf := range mfs {
		if mf.GetName() != "node_scrape_collector_success" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() != 1 {
				t.Errorf("collector %s failed", m.GetLabel()[0].GetValue())
			}
		}
	}
	// node_exporter's own meminfo names are camelCase, which promtool's
	// linter flags: those alone (they stay in the TSDB, off /metrics).
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if !strings.HasPrefix(p.Metric, "node_memory_") || !strings.Contains(p.Text, "camelCase") {
			t.Errorf("lint: %v", p)
		}
	}
}
