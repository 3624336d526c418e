package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/cgstat"
)

// containersService is the runtime engine's "runtime.containers" service
// as this engine uses it: the containers it runs.
type containersService interface {
	Containers() []cgstat.Container
}

// runtimeContainersService is the name the runtime provides it under.
const runtimeContainersService = "runtime.containers"

// containerCollector exposes every running container's cgroup under
// cAdvisor's metric names and labels (id: the cgroup path, name, image),
// read with the runtime's cgstat (cgroup v1 and v2).
type containerCollector struct {
	list func() []cgstat.Container
	// ring keeps the readings of each container for cAdvisor's API.
	ring sampleRing

	cpu, memWS, memLimit, memUsage, rx, tx, fsR, fsW, tasks, start, lastSeen *prometheus.Desc
}

func containerDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("container_"+name, help, []string{"id", "name", "image"}, nil)
}

func newContainerCollector(services *engines.Services) *containerCollector {
	return &containerCollector{
		list: func() []cgstat.Container {
			// Looked up at each collection: the runtime provides it in
			// its Start, and a daemon without the runtime has none.
			svc, err := engines.Lookup[containersService](services, runtimeContainersService)
			if err != nil {
				return nil
			}
			return svc.Containers()
		},
		cpu:      containerDesc("cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds."),
		memWS:    containerDesc("memory_working_set_bytes", "Current working set in bytes."),
		memUsage: containerDesc("memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed (here: the working set, as cgstat reads it)."),
		memLimit: containerDesc("spec_memory_limit_bytes", "Memory limit for the container."),
		rx:       containerDesc("network_receive_bytes_total", "Cumulative count of bytes received."),
		tx:       containerDesc("network_transmit_bytes_total", "Cumulative count of bytes transmitted."),
		fsR:      containerDesc("fs_reads_bytes_total", "Cumulative count of bytes read."),
		fsW:      containerDesc("fs_writes_bytes_total", "Cumulative count of bytes written."),
		tasks:    containerDesc("threads", "Number of threads running inside the container."),
		start:    containerDesc("start_time_seconds", "Start time of the container since unix epoch in seconds."),
		lastSeen: containerDesc("last_seen", "Last time a container was seen by the exporter."),
	}
}

func (c *containerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.memWS, c.memUsage, c.memLimit, c.rx, c.tx, c.fsR, c.fsW, c.tasks, c.start, c.lastSeen} {
		ch <- d
	}
}

func (c *containerCollector) Collect(ch chan<- prometheus.Metric) {
	listed := map[string]bool{}
	defer c.ring.forget(listed)
	for _, ct := range c.list() {
		listed[ct.Cgroup] = true
		if !ct.Running {
			continue
		}
		cg, err := cgstat.Open(ct.Cgroup)
		if err != nil {
			continue // it stopped between the listing and now
		}
		s, err := cg.Stats(ct.Pid)
		if err != nil {
			continue
		}
		c.ring.add(ct.Cgroup, s)
		lv := []string{ct.Cgroup, ct.Name, ct.Image}
		g := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, t, v, lv...)
		}
		g(c.cpu, prometheus.CounterValue, float64(s.CPUUsage)/1e9)
		g(c.memWS, prometheus.GaugeValue, float64(s.MemoryUsage))
		g(c.memUsage, prometheus.GaugeValue, float64(s.MemoryUsage))
		limit := float64(0) // cAdvisor's 0: no limit
		if ct.MemoryLimit > 0 {
			limit = float64(ct.MemoryLimit)
		}
		g(c.memLimit, prometheus.GaugeValue, limit)
		g(c.rx, prometheus.CounterValue, float64(s.NetRx))
		g(c.tx, prometheus.CounterValue, float64(s.NetTx))
		g(c.fsR, prometheus.CounterValue, float64(s.BlockRead))
		g(c.fsW, prometheus.CounterValue, float64(s.BlockWrite))
		g(c.tasks, prometheus.GaugeValue, float64(s.PidsCurrent))
		if !ct.Started.IsZero() {
			g(c.start, prometheus.GaugeValue, float64(ct.Started.Unix()))
		}
		g(c.lastSeen, prometheus.GaugeValue, float64(s.Read.Unix()))
	}
}
