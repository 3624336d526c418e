package runtime

import (
	"slices"
	"strings"

	"github.com/cairnhq/cairn/engines/runtime/cgstat"
)

// ContainersService is the name under which the runtime provides its
// containers to other modules: the metrics engine's container collector
// and cAdvisor API read them through an interface of their own.
const ContainersService = "runtime.containers"

// containersService lists the runtime's containers.
type containersService struct{ t *containers }

// Containers lists every container the runtime knows, sorted by name.
func (s containersService) Containers() []cgstat.Container {
	var out []cgstat.Container
	for _, e := range s.t.all() {
		c := e.snapshot()
		out = append(out, cgstat.Container{
			ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID,
			Created: c.Created, Started: c.State.StartedAt,
			Pid: c.State.Pid, Cgroup: cgroupsPath(c.ID), Running: c.State.Running,
			MemoryLimit: c.Host.Memory, NanoCPUs: c.Host.NanoCPUs,
		})
	}
	slices.SortFunc(out, func(a, b cgstat.Container) int { return strings.Compare(a.Name, b.Name) })
	return out
}
