package metrics

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines/runtime/cgstat"
)

// cAdvisor's REST API, version 2.0, for the runtime's containers:
// /api/v2.0/spec[/CONTAINER] and /api/v2.0/stats[/CONTAINER][?count=N],
// keyed by the container's cgroup path as cAdvisor keys them
// ("/cairn/<id>"). CONTAINER is a name, an id or that path; without it,
// every container. The samples are the container collector's readings,
// the last samplesKept of each container.

// samplesKept is how many readings of each container the API can answer
// (cAdvisor keeps 60 by default with its 1s housekeeping).
const samplesKept = 60

// sampleRing keeps the last readings of each container.
type sampleRing struct {
	mu sync.Mutex
	m  map[string][]cgstat.Stats // by cgroup path
}

func (r *sampleRing) add(cgroup string, s cgstat.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string][]cgstat.Stats{}
	}
	l := append(r.m[cgroup], s)
	if len(l) > samplesKept {
		l = l[len(l)-samplesKept:]
	}
	r.m[cgroup] = l
}

// last returns the last n readings, oldest first.
func (r *sampleRing) last(cgroup string, n int) []cgstat.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.m[cgroup]
	if n < len(l) {
		l = l[len(l)-n:]
	}
	return append([]cgstat.Stats(nil), l...)
}

// forget drops the readings of containers no longer listed.
func (r *sampleRing) forget(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.m {
		if !keep[k] {
			delete(r.m, k)
		}
	}
}

// cadvisorSpec is cAdvisor v2's ContainerSpec, the fields cairn knows.
type cadvisorSpec struct {
	CreationTime  time.Time         `json:"creation_time"`
	Aliases       []string          `json:"aliases"`
	Namespace     string            `json:"namespace"`
	Labels        map[string]string `json:"labels,omitempty"`
	HasCPU        bool              `json:"has_cpu"`
	CPU           cadvisorCPUSpec   `json:"cpu"`
	HasMemory     bool              `json:"has_memory"`
	Memory        cadvisorMemSpec   `json:"memory"`
	HasNetwork    bool              `json:"has_network"`
	HasFilesystem bool              `json:"has_filesystem"`
	HasDiskIo     bool              `json:"has_diskio"`
	HasProcesses  bool              `json:"has_processes"`
	Image         string            `json:"image"`
}

type cadvisorCPUSpec struct {
	Limit  uint64 `json:"limit"`
	Quota  uint64 `json:"quota,omitempty"`
	Period uint64 `json:"period,omitempty"`
}

type cadvisorMemSpec struct {
	Limit uint64 `json:"limit,omitempty"`
}

// cadvisorStats is cAdvisor v2's ContainerStats, the fields cairn reads.
type cadvisorStats struct {
	Timestamp    time.Time          `json:"timestamp"`
	HasCPU       bool               `json:"has_cpu"`
	CPU          *cadvisorCPU       `json:"cpu,omitempty"`
	HasDiskIo    bool               `json:"has_diskio"`
	DiskIo       *cadvisorDiskIo    `json:"diskio,omitempty"`
	HasMemory    bool               `json:"has_memory"`
	Memory       *cadvisorMemory    `json:"memory,omitempty"`
	HasNetwork   bool               `json:"has_network"`
	Network      *cadvisorNetwork   `json:"network,omitempty"`
	HasProcesses bool               `json:"has_processes"`
	Processes    *cadvisorProcesses `json:"processes,omitempty"`
}

type cadvisorCPU struct {
	Usage struct {
		Total uint64 `json:"total"`
	} `json:"usage"`
}

type cadvisorDiskIo struct {
	IoServiceBytes []cadvisorPerDisk `json:"io_service_bytes"`
}

type cadvisorPerDisk struct {
	Device string            `json:"device"`
	Stats  map[string]uint64 `json:"stats"`
}

type cadvisorMemory struct {
	Usage      uint64 `json:"usage"`
	WorkingSet uint64 `json:"working_set"`
}

type cadvisorNetwork struct {
	Interfaces []cadvisorInterface `json:"interfaces"`
}

type cadvisorInterface struct {
	Name    string `json:"name"`
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

type cadvisorProcesses struct {
	ThreadsCurrent uint64 `json:"threads_current"`
	ThreadsMax     uint64 `json:"threads_max"`
}

// toCadvisorStats is a cgstat reading in cAdvisor's v2 shape.
func toCadvisorStats(s cgstat.Stats) cadvisorStats {
	out := cadvisorStats{Timestamp: s.Read, HasCPU: true, HasMemory: true, HasDiskIo: true, HasNetwork: true, HasProcesses: true}
	out.CPU = &cadvisorCPU{}
	out.CPU.Usage.Total = s.CPUUsage
	out.Memory = &cadvisorMemory{Usage: s.MemoryUsage, WorkingSet: s.MemoryUsage}
	out.DiskIo = &cadvisorDiskIo{IoServiceBytes: []cadvisorPerDisk{{Device: "all", Stats: map[string]uint64{"Read": s.BlockRead, "Write": s.BlockWrite, "Total": s.BlockRead + s.BlockWrite}}}}
	// cgstat sums the namespace's interfaces; cAdvisor lists each.
	out.Network = &cadvisorNetwork{Interfaces: []cadvisorInterface{{Name: "all", RxBytes: s.NetRx, TxBytes: s.NetTx}}}
	out.Processes = &cadvisorProcesses{ThreadsCurrent: s.PidsCurrent, ThreadsMax: s.PidsLimit}
	return out
}

func toCadvisorSpec(c cgstat.Container) cadvisorSpec {
	sp := cadvisorSpec{CreationTime: c.Created, Aliases: []string{c.Name, c.ID}, Namespace: "cairn", Image: c.Image,
		HasCPU: true, HasMemory: true, HasNetwork: true, HasDiskIo: true, HasProcesses: true,
		CPU: cadvisorCPUSpec{Limit: 1024}}
	if c.NanoCPUs > 0 {
		sp.CPU.Period = 100000
		sp.CPU.Quota = uint64(c.NanoCPUs) * sp.CPU.Period / 1e9
	}
	if c.MemoryLimit > 0 {
		sp.Memory.Limit = uint64(c.MemoryLimit)
	}
	return sp
}

// selectContainers returns the containers ref names (all when empty).
func selectContainers(all []cgstat.Container, ref string) []cgstat.Container {
	ref = strings.Trim(ref, "/")
	if ref == "" {
		return all
	}
	var out []cgstat.Container
	for _, c := range all {
		if c.Name == ref || c.ID == ref || strings.Trim(c.Cgroup, "/") == ref || (len(ref) >= 12 && strings.HasPrefix(c.ID, ref)) {
			out = append(out, c)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (m *module) serveCadvisorSpec(w http.ResponseWriter, r *http.Request) {
	cs := selectContainers(m.containers.list(), r.PathValue("container"))
	if len(cs) == 0 && r.PathValue("container") != "" {
		http.Error(w, "unknown container \""+r.PathValue("container")+"\"", http.StatusNotFound)
		return
	}
	out := map[string]cadvisorSpec{}
	for _, c := range cs {
		out[c.Cgroup] = toCadvisorSpec(c)
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *module) serveCadvisorStats(w http.ResponseWriter, r *http.Request) {
	count := samplesKept
	if s := r.URL.Query().Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			http.Error(w, "count="+s+": a positive number", http.StatusBadRequest)
			return
		}
		count = n
	}
	cs := selectContainers(m.containers.list(), r.PathValue("container"))
	if len(cs) == 0 && r.PathValue("container") != "" {
		http.Error(w, "unknown container \""+r.PathValue("container")+"\"", http.StatusNotFound)
		return
	}
	out := map[string][]cadvisorStats{}
	for _, c := range cs {
		list := []cadvisorStats{}
		for _, s := range m.containers.ring.last(c.Cgroup, count) {
			list = append(list, toCadvisorStats(s))
		}
		out[c.Cgroup] = list
	}
	writeJSON(w, http.StatusOK, out)
}
