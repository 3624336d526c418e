package deploy

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// monitor is the health monitor: every healthEvery it asks the runtime
// whether each started instance's container runs, and the resurrector
// recreates those that do not, with their disks, unless too many of a
// deployment are down at once (meltdown, as BOSH's).
func (m *module) monitor(ctx context.Context) {
	every := m.healthEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	melted := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		on := m.st.Resurrection
		deps := names(m.st.Deployments)
		m.mu.Unlock()
		if !on {
			continue
		}
		for _, dep := range deps {
			m.checkDeployment(ctx, dep, melted)
		}
	}
}

func (m *module) checkDeployment(ctx context.Context, dep string, melted map[string]bool) {
	lock := m.depLock(dep)
	if !lock.TryLock() {
		return // a task runs: it owns the instances now
	}
	defer lock.Unlock()
	m.mu.Lock()
	d := m.st.Deployments[dep]
	if d == nil {
		m.mu.Unlock()
		return
	}
	src := d.Resolved
	all := append([]*Instance(nil), d.Instances...)
	var watched []*Instance
	for _, in := range all {
		if in.State == "started" {
			watched = append(watched, in)
		}
	}
	m.mu.Unlock()
	var down []*Instance
	for _, in := range watched {
		info, err := m.rt.Inspect(in.Container)
		if err != nil || !info.Running {
			down = append(down, in)
		}
	}
	if len(down) == 0 {
		melted[dep] = false
		return
	}
	if len(down) >= m.meltdownMin && len(down)*100 > m.meltdownPercent*len(watched) {
		if !melted[dep] {
			melted[dep] = true
			m.record(ctx, journal.SystemActor(), "deploy.meltdown", dep, map[string]any{"deployment": dep, "down": len(down), "instances": len(watched)})
		}
		return
	}
	melted[dep] = false
	p, err := m.deployedPlan(dep, src)
	if err != nil {
		m.log.Warn("deploy: resurrector: the deployment's manifest", "deployment", dep, "err", err)
		return
	}
	for _, in := range down {
		g := p.group(in.Group)
		if g == nil {
			continue
		}
		w, _ := g.update(p.man.Update).watch(false)
		err := m.updateInstance(ctx, journal.SystemActor(), &Task{}, p, all, in, true, w)
		data := map[string]any{"deployment": dep, "group": in.Group, "index": in.Index, "id": in.ID, "container": in.Container, "ip": in.IP}
		if err != nil {
			data["error"] = err.Error()
		}
		m.record(ctx, journal.SystemActor(), "deploy.resurrect", dep+"/"+in.Name(), data)
	}
}
