package deploy

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/engines/runtime/containerspec"
	"github.com/cairnhq/cairn/journal"
)

// selectInstances picks a deployment's instances by GROUP, GROUP/INDEX or
// GROUP/UUID; all of them for an empty sel.
func selectInstances(d *Deployment, sel string) ([]*Instance, error) {
	group, which, _ := strings.Cut(sel, "/")
	var out []*Instance
	for _, in := range sortedInstances(d.Instances) {
		if sel != "" && in.Group != group {
			continue
		}
		if which != "" && strconv.Itoa(in.Index) != which && in.ID != which {
			continue
		}
		out = append(out, in)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no instance %s in deployment %s (deploy instances %s lists them)", sel, d.Name, d.Name)
	}
	return out, nil
}

// lifecycle runs deploy start, stop, restart or recreate over the
// selected instances, as one task.
func (m *module) lifecycle(ctx context.Context, actor journal.Actor, verb, dep, sel string, out answer) error {
	m.mu.Lock()
	d := m.st.Deployments[dep]
	m.mu.Unlock()
	if d == nil {
		return fmt.Errorf("no deployment %s (deployments lists them)", dep)
	}
	lock := m.depLock(dep)
	lock.Lock()
	defer lock.Unlock()
	m.mu.Lock()
	list, err := selectInstances(d, sel)
	src := d.Resolved
	all := append([]*Instance(nil), d.Instances...)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	p, err := m.deployedPlan(dep, src)
	if err != nil {
		return err
	}
	man := p.man
	t, ctx := m.startTask(ctx, actor, dep, verb+" "+strings.TrimSpace(dep+" "+sel))
	err = func() error {
		for _, in := range list {
			g := p.group(in.Group)
			if g == nil {
				continue
			}
			w, _ := g.update(man.Update).watch(false)
			data := map[string]any{"task": t.ID, "deployment": dep, "group": in.Group, "index": in.Index, "id": in.ID, "container": in.Container}
			stop := func() error {
				if err := m.drain(ctx, in, m.instDir(dep, in)); err != nil {
					return err
				}
				if err := m.rt.Stop(ctx, in.Container, 10*time.Second); err != nil {
					return fmt.Errorf("stop %s: %w", in.Name(), err)
				}
				m.mu.Lock()
				in.State = "stopped"
				m.saveLocked()
				m.mu.Unlock()
				m.record(ctx, actor, "deploy.instance.stop", dep+"/"+in.Name(), data)
				return nil
			}
			start := func() error {
				if err := m.rt.Start(ctx, journal.SystemActor(), in.Container); err != nil {
					return fmt.Errorf("start %s: %w", in.Name(), err)
				}
				if err := m.watch(ctx, in, w); err != nil {
					return err
				}
				m.mu.Lock()
				in.State = "started"
				m.saveLocked()
				m.mu.Unlock()
				m.record(ctx, actor, "deploy.instance.start", dep+"/"+in.Name(), data)
				return nil
			}
			var err error
			switch verb {
			case "stop":
				err = stop()
			case "start":
				err = start()
			case "restart":
				if err = stop(); err == nil {
					err = start()
				}
			case "recreate":
				err = m.updateInstance(ctx, actor, t, p, all, in, true, w)
			}
			row := map[string]any{"instance": in.Name(), "id": in.ID, "action": verb, "ip": in.IP}
			if err != nil {
				row["error"] = err.Error()
				out(row)
				return err
			}
			out(row)
		}
		return nil
	}()
	m.endTask(ctx, actor, t, err)
	return err
}

// problem is one finding of cck.
type problem struct {
	Instance   string `json:"instance"`
	ID         string `json:"id"`
	Problem    string `json:"problem"`
	Resolution string `json:"resolution"`
	Resolved   bool   `json:"resolved"`
}

// cck finds instances whose container is missing or not running, or
// whose persistent disk is gone; with auto it applies BOSH's resolution
// (recreate the VM, with its disk).
func (m *module) cck(ctx context.Context, actor journal.Actor, dep string, auto bool, out func(problem)) error {
	m.mu.Lock()
	d := m.st.Deployments[dep]
	m.mu.Unlock()
	if d == nil {
		return fmt.Errorf("no deployment %s (deployments lists them)", dep)
	}
	lock := m.depLock(dep)
	lock.Lock()
	defer lock.Unlock()
	m.mu.Lock()
	all := append([]*Instance(nil), d.Instances...)
	src := d.Resolved
	m.mu.Unlock()
	var found []*Instance
	var probs []problem
	for _, in := range sortedInstances(all) {
		pr := problem{Instance: in.Name(), ID: in.ID}
		info, err := m.rt.Inspect(in.Container)
		switch {
		case in.Container == "" || err != nil:
			pr.Problem, pr.Resolution = "missing VM: its container is gone", "recreate VM (with its persistent disk)"
		case !info.Running && in.State == "started":
			pr.Problem, pr.Resolution = fmt.Sprintf("unresponsive VM: its process exited %d", info.ExitCode), "recreate VM (with its persistent disk)"
		case in.Disk && !exists(m.diskDir(dep, in)):
			pr.Problem, pr.Resolution = "missing persistent disk", "recreate VM with an empty disk"
		default:
			continue
		}
		found = append(found, in)
		probs = append(probs, pr)
	}
	if !auto || len(found) == 0 {
		for _, pr := range probs {
			out(pr)
		}
		return nil
	}
	p, err := m.deployedPlan(dep, src)
	if err != nil {
		return err
	}
	man := p.man
	t, ctx := m.startTask(ctx, actor, dep, "cloud check "+dep)
	var first error
	for i, in := range found {
		g := p.group(in.Group)
		w, _ := g.update(man.Update).watch(false)
		err := m.updateInstance(ctx, actor, t, p, all, in, true, w)
		probs[i].Resolved = err == nil
		if err != nil && first == nil {
			first = err
		}
		out(probs[i])
	}
	m.endTask(ctx, actor, t, first)
	return first
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runErrand runs an errand instance group once: a container per
// instance from the stemcell with the group's jobs rendered, each job's
// bin/run as its command; the answer is each one's exit code, its output
// in the logs stream.
func (m *module) runErrand(ctx context.Context, actor journal.Actor, dep, name string, out answer) error {
	m.mu.Lock()
	d := m.st.Deployments[dep]
	m.mu.Unlock()
	if d == nil {
		return fmt.Errorf("no deployment %s (deployments lists them)", dep)
	}
	lock := m.depLock(dep)
	lock.Lock()
	defer lock.Unlock()
	m.mu.Lock()
	src := d.Resolved
	all := append([]*Instance(nil), d.Instances...)
	m.mu.Unlock()
	p, err := m.deployedPlan(dep, src)
	if err != nil {
		return err
	}
	g := p.group(name)
	if g == nil || g.Lifecycle != "errand" {
		return fmt.Errorf("deployment %s has no errand %s (an instance group with lifecycle: errand)", dep, name)
	}
	t, ctx := m.startTask(ctx, actor, dep, "run errand "+name)
	err = func() error {
		st := p.stemcells[g.Stemcell]
		if err := m.compile(ctx, actor, t.ID, p.packages(g), st, 2); err != nil {
			return err
		}
		for i := 0; i < max(1, g.Instances); i++ {
			in := &Instance{Group: g.Name, Index: i, ID: newUUID()}
			dir := m.instDir(dep, in)
			defer os.RemoveAll(dir)
			for _, sub := range []string{"jobs", "bosh"} {
				if err := os.MkdirAll(dir+"/"+sub, 0o755); err != nil {
					return err
				}
			}
			network, addr, err := m.placement(ctx, actor, p, append(append([]*Instance(nil), all...), in), in)
			if err != nil {
				return fmt.Errorf("errand %s: %w", name, err)
			}
			info, err := m.rt.Create(ctx, journal.SystemActor(), containerspec.Spec{
				Image: st.ImageID, Name: fmt.Sprintf("%s.%s.errand.%s", dep, g.Name, in.ID[:8]), Hostname: in.ID,
				Cmd: []string{"/bin/sh", "/var/vcap/bosh/run"}, Network: network, IP: addr, Binds: m.binds(p, g, dep, in),
			})
			if err != nil {
				return fmt.Errorf("errand %s: %w", name, err)
			}
			in.Container, in.IP = info.Name, info.IP
			r, err := p.render(dep, in, in.IP, all, m.jobDir, "")
			if err != nil {
				_ = m.rt.Remove(ctx, journal.SystemActor(), info.ID)
				return err
			}
			r.run = errandScript(p.jobs[g.Name])
			if err := writeInstance(dir, r); err != nil {
				_ = m.rt.Remove(ctx, journal.SystemActor(), info.ID)
				return err
			}
			if err := m.rt.Start(ctx, journal.SystemActor(), info.ID); err != nil {
				_ = m.rt.Remove(ctx, journal.SystemActor(), info.ID)
				return err
			}
			code, err := m.rt.Wait(ctx, info.ID)
			_ = m.rt.Remove(context.WithoutCancel(ctx), journal.SystemActor(), info.ID)
			if err != nil {
				return err
			}
			m.record(ctx, actor, "deploy.errand", dep+"/"+name, map[string]any{"task": t.ID, "deployment": dep, "errand": name,
				"index": i, "container": info.Name, "exit_code": code})
			out(map[string]any{"errand": name, "index": i, "exit_code": code, "output": fmt.Sprintf("events stream=logs where 'container.name == %q'", info.Name)})
			if code != 0 {
				return fmt.Errorf("errand %s/%d exited %d", name, i, code)
			}
		}
		return nil
	}()
	m.endTask(ctx, actor, t, err)
	return err
}

// errandScript runs each job's bin/run in turn; the first failure is
// the errand's.
func errandScript(jobs []*Job) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# written by cairn's deploy engine: an errand runs each job's bin/run\nset -e\n")
	for _, j := range jobs {
		fmt.Fprintf(&b, "mkdir -p /var/vcap/sys/log/%[1]s /var/vcap/sys/run/%[1]s /var/vcap/data/%[1]s\n", j.Name)
		fmt.Fprintf(&b, "sh /var/vcap/jobs/%s/bin/run\n", j.Name)
	}
	return b.String()
}
