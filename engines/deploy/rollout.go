package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairnhq/cairn/engines/runtime/containerspec"
	"github.com/cairnhq/cairn/journal"
)

// deployOpts are a deploy statement's flags.
type deployOpts struct {
	dryRun, recreate, skipDrain bool
	// vars are the values given with var.K=V and vars-file=.
	vars map[string]any
}

// answer is how a task reports its progress to its caller.
type answer func(row map[string]any)

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// startTask records a task of a deployment. The task runs under the
// context it answers: not the request's (a client that goes away leaves
// it running, as a BOSH task does), but one deploy task cancel ID, or the
// daemon's stop, ends.
func (m *module) startTask(ctx context.Context, actor journal.Actor, dep, desc string) (*Task, context.Context) {
	parent := m.runCtx
	if parent == nil {
		parent = context.WithoutCancel(ctx)
	}
	taskCtx, cancel := context.WithCancel(parent)
	m.mu.Lock()
	t := &Task{ID: len(m.st.Tasks) + 1, Deployment: dep, Description: desc, State: "processing", Started: time.Now().UTC()}
	m.st.Tasks = append(m.st.Tasks, t)
	m.cancels[t.ID] = cancel
	m.saveLocked()
	m.mu.Unlock()
	t.FirstSeq = m.record(ctx, actor, "deploy.task.start", dep, map[string]any{"task": t.ID, "deployment": dep, "description": desc})
	return t, taskCtx
}

// cancelTask ends a running task's context; false if it is not running.
func (m *module) cancelTask(id int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cancel, ok := m.cancels[id]
	if ok {
		m.canceled[id] = true
		cancel()
	}
	return ok
}

// endTask records a task's end, done or failed with err.
func (m *module) endTask(ctx context.Context, actor journal.Actor, t *Task, err error) {
	m.mu.Lock()
	t.Ended = time.Now().UTC()
	t.State = "done"
	if err != nil {
		t.State, t.Error = "error", err.Error()
	}
	canceled := m.canceled[t.ID]
	if canceled {
		t.State = "cancelled"
	}
	if cancel := m.cancels[t.ID]; cancel != nil {
		cancel()
	}
	delete(m.cancels, t.ID)
	delete(m.canceled, t.ID)
	m.saveLocked()
	m.mu.Unlock()
	if canceled {
		m.record(ctx, actor, "deploy.task.cancel", t.Deployment, map[string]any{"task": t.ID, "deployment": t.Deployment})
		return
	}
	if err != nil {
		m.record(ctx, actor, "deploy.task.fail", t.Deployment, map[string]any{"task": t.ID, "deployment": t.Deployment, "error": err.Error()})
		return
	}
	m.record(ctx, actor, "deploy.task.done", t.Deployment, map[string]any{"task": t.ID, "deployment": t.Deployment})
}

func (m *module) containerName(dep string, inst *Instance) string {
	return fmt.Sprintf("%s.%s.%d", dep, inst.Group, inst.Index)
}

func (m *module) instDir(dep string, inst *Instance) string {
	return filepath.Join(m.dir, "instances", dep, inst.ID)
}

func (m *module) diskDir(dep string, inst *Instance) string {
	return filepath.Join(m.dir, "disks", dep, inst.ID)
}

// deploy runs a deploy task: the manifest checked and every instance
// rendered before anything changes, the diff answered, packages
// compiled, then each instance group rolled in order, canaries first.
func (m *module) deploy(ctx context.Context, actor journal.Actor, file string, src []byte, o deployOpts, out answer) error {
	name, err := manifestName(file, src, o.vars)
	if err != nil {
		return err
	}
	// The manifest's shape is checked as written, so that an error's line
	// and column are the file's (the interpolated manifest parsed below is
	// the same document re-encoded, whose lines differ).
	if err := checkShape(file, src); err != nil {
		return err
	}
	lock := m.depLock(name)
	if !lock.TryLock() {
		out(map[string]any{"task": "queued", "deployment": name, "note": "another task of this deployment runs; this one waits"})
		lock.Lock()
	}
	defer lock.Unlock()
	// Variables are generated once and kept, even if this deploy fails.
	m.mu.Lock()
	stored := map[string]any{}
	for k, v := range m.st.Variables[name] {
		stored[k] = v
	}
	m.mu.Unlock()
	resolved, made, err := resolveVars(file, src, o.vars, stored)
	if err != nil {
		return err
	}
	if len(made) > 0 {
		m.mu.Lock()
		m.st.Variables[name] = stored
		m.saveLocked()
		m.mu.Unlock()
	}
	man, err := parseManifest(file, resolved)
	if err != nil {
		return err
	}
	m.implicitStemcells(ctx, actor, man)
	if man.Name != name {
		return fmt.Errorf("%s: name: %q is not the name read before its variables (%q)", file, man.Name, name)
	}

	m.mu.Lock()
	p, err := m.st.resolve(man)
	var old *Deployment
	if err == nil {
		old = m.st.Deployments[man.Name]
	}
	var existing []*Instance
	if old != nil {
		existing = append(existing, old.Instances...)
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	// The instances the manifest wants, existing ones kept by group and
	// index (their id, container, address and disk).
	var want []*Instance
	byKey := map[string]*Instance{}
	for _, in := range existing {
		byKey[in.Name()] = in
	}
	for _, g := range man.InstanceGroups {
		if g.Lifecycle == "errand" {
			continue // run by deploy run-errand, never kept running
		}
		for i := 0; i < g.Instances; i++ {
			in := byKey[fmt.Sprintf("%s/%d", g.Name, i)]
			if in == nil {
				in = &Instance{Group: g.Name, Index: i, ID: newUUID(), State: "new"}
			}
			want = append(want, in)
		}
	}
	// Every instance has an address on its manual network, and every
	// template renders, before anything changes.
	m.mu.Lock()
	others := m.othersInstancesLocked(man.Name)
	m.mu.Unlock()
	if _, err := p.allocate(want, others); err != nil {
		return err
	}
	for _, in := range want {
		if _, err := p.render(man.Name, in, in.IP, want, m.jobDir, ""); err != nil {
			return fmt.Errorf("instance %s: %w", in.Name(), err)
		}
	}
	oldManifest := ""
	if old != nil {
		oldManifest = old.Manifest
	}
	diff := lineDiff(oldManifest, string(src))
	for _, l := range diff {
		out(map[string]any{"diff": l})
	}
	if o.dryRun {
		return nil
	}
	t, ctx := m.startTask(ctx, actor, man.Name, "create deployment")
	t.skipDrain = o.skipDrain
	out(map[string]any{"task": t.ID, "deployment": man.Name})
	added, removed := 0, 0
	for _, l := range diff {
		switch l[0] {
		case '+':
			added++
		case '-':
			removed++
		}
	}
	m.record(ctx, actor, "deploy.diff", man.Name, map[string]any{"task": t.ID, "deployment": man.Name, "added_lines": added, "removed_lines": removed})
	if len(made) > 0 {
		m.record(ctx, actor, "deploy.variables", man.Name, map[string]any{"task": t.ID, "deployment": man.Name, "generated": made})
	}
	err = m.rollout(ctx, actor, t, p, src, resolved, want, existing, o, out)
	m.endTask(ctx, actor, t, err)
	if err != nil {
		return fmt.Errorf("task %d: %w", t.ID, err)
	}
	return nil
}

func (m *module) rollout(ctx context.Context, actor journal.Actor, t *Task, p *plan, src, resolved []byte, want, existing []*Instance, o deployOpts, out answer) error {
	man := p.man
	m.mu.Lock()
	d := m.st.Deployments[man.Name]
	if d == nil {
		d = &Deployment{Name: man.Name}
		m.st.Deployments[man.Name] = d
	}
	// The record holds every instance the task may touch, so that a
	// daemon killed half way finds each (deploy instances asks the
	// runtime for the truth of its container).
	merged := append([]*Instance(nil), want...)
	inWant := map[string]bool{}
	for _, in := range want {
		inWant[in.ID] = true
	}
	for _, in := range existing {
		if !inWant[in.ID] {
			merged = append(merged, in)
		}
	}
	d.Instances = merged
	m.saveLocked()
	m.mu.Unlock()
	workers := 2
	if p.cloud != nil && p.cloud.Compilation.Workers > 0 {
		workers = p.cloud.Compilation.Workers
	}
	for _, g := range man.InstanceGroups {
		if err := m.compile(ctx, actor, t.ID, p.packages(&g), p.stemcells[g.Stemcell], workers); err != nil {
			return err
		}
	}
	for gi := range man.InstanceGroups {
		g := &man.InstanceGroups[gi]
		if g.Lifecycle == "errand" {
			continue
		}
		var group []*Instance
		for _, in := range want {
			if in.Group == g.Name {
				group = append(group, in)
			}
		}
		// Which need a change: new, different, gone or not running.
		var due []*Instance
		for _, in := range group {
			if in.State == "new" || o.recreate || in.State == "failed" {
				due = append(due, in)
				continue
			}
			r, err := p.render(man.Name, in, in.IP, want, m.jobDir, m.pkgKey(p, g))
			if err != nil {
				return err
			}
			info, ierr := m.rt.Inspect(in.Container)
			if r.hash != in.Hash || ierr != nil || (!info.Running && in.State == "started") {
				due = append(due, in)
			}
		}
		if len(due) == 0 {
			continue
		}
		u := g.update(man.Update)
		canaries := min(u.canaries(), len(due))
		inFlight, _ := u.maxInFlight(g.Instances)
		cw, _ := u.watch(true)
		uw, _ := u.watch(false)
		batches := [][]*Instance{}
		if canaries > 0 {
			batches = append(batches, due[:canaries])
		}
		for i := canaries; i < len(due); i += inFlight {
			batches = append(batches, due[i:min(i+inFlight, len(due))])
		}
		for bi, batch := range batches {
			canary := bi == 0 && canaries > 0
			watch := uw
			if canary {
				watch = cw
			}
			errs := make([]error, len(batch))
			var wg sync.WaitGroup
			for i, in := range batch {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = m.updateInstance(ctx, actor, t, p, want, in, o.recreate, watch)
				}()
			}
			wg.Wait()
			for i, in := range batch {
				row := map[string]any{"instance": in.Name(), "id": in.ID, "ip": in.IP, "canary": canary, "state": "running"}
				if errs[i] != nil {
					row["state"], row["error"] = "failed", errs[i].Error()
				}
				out(row)
				if canary {
					kind := "deploy.canary.ok"
					data := map[string]any{"task": t.ID, "deployment": man.Name, "group": in.Group, "index": in.Index, "id": in.ID}
					if errs[i] != nil {
						kind, data["error"] = "deploy.canary.fail", errs[i].Error()
					}
					m.record(ctx, actor, kind, man.Name+"/"+in.Name(), data)
				}
			}
			if err := errors.Join(errs...); err != nil {
				if canary {
					return fmt.Errorf("canary of %s failed, the rest of the deployment is untouched: %w", g.Name, err)
				}
				return err
			}
		}
	}
	// post-deploy, on every instance, once all groups are rolled.
	for _, in := range want {
		if p.group(in.Group) == nil || in.Container == "" {
			continue
		}
		if err := m.hook(ctx, in, m.instDir(man.Name, in), "post-deploy"); err != nil {
			return err
		}
	}
	// Instances the manifest no longer has go, with their disks.
	keep := map[string]bool{}
	for _, in := range want {
		keep[in.ID] = true
	}
	for _, in := range existing {
		if !keep[in.ID] {
			m.deleteInstance(ctx, actor, t.ID, man.Name, in)
			out(map[string]any{"instance": in.Name(), "id": in.ID, "state": "deleted"})
		}
	}
	m.mu.Lock()
	d.Manifest = string(src)
	d.Resolved = string(resolved)
	d.Instances = want
	m.saveLocked()
	m.mu.Unlock()
	return nil
}

// pkgKey names the compiled packages and stemcell an instance's
// container is made with: when it changes, the container is recreated.
func (m *module) pkgKey(p *plan, g *InstanceGroup) string {
	mem, cpu := p.cloud.limits(g.VMType)
	parts := []string{fmt.Sprintf("limits=%d/%d", mem, cpu)}
	for _, pk := range p.packages(g) {
		parts = append(parts, pk.Name+"="+pk.Fingerprint)
	}
	return p.stemcells[g.Stemcell].ImageID + "|" + strings.Join(parts, ",")
}

// binds are the instance container's mounts: its jobs, its run script,
// its compiled packages, its persistent disk.
func (m *module) binds(p *plan, g *InstanceGroup, dep string, in *Instance) []string {
	dir := m.instDir(dep, in)
	b := []string{filepath.Join(dir, "jobs") + ":/var/vcap/jobs:ro", filepath.Join(dir, "bosh") + ":/var/vcap/bosh:ro"}
	st := p.stemcells[g.Stemcell]
	for _, pk := range p.packages(g) {
		b = append(b, m.compiledDir(pk.Fingerprint, st.ImageID)+":/var/vcap/packages/"+pk.Name+":ro")
	}
	if g.PersistentDisk > 0 || g.PersistentDiskType != "" {
		b = append(b, m.diskDir(dep, in)+":/var/vcap/store")
	}
	return b
}

// updateInstance brings one instance to the plan: a new container
// (created, or recreated when its packages, stemcell or recreate ask),
// else its jobs rendered anew and its container restarted; then it must
// stay running for the watch time.
func (m *module) updateInstance(ctx context.Context, actor journal.Actor, t *Task, p *plan, all []*Instance, in *Instance, recreate bool, watch watchRange) error {
	dep := p.man.Name
	g := p.group(in.Group)
	key := m.pkgKey(p, g)
	dir := m.instDir(dep, in)
	for _, d := range []string{filepath.Join(dir, "jobs"), filepath.Join(dir, "bosh")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	disk := g.PersistentDisk > 0 || g.PersistentDiskType != ""
	if disk {
		if err := os.MkdirAll(m.diskDir(dep, in), 0o755); err != nil {
			return err
		}
	}
	network, addr, err := m.placement(ctx, actor, p, all, in)
	if err != nil {
		return err
	}
	_, ierr := m.rt.Inspect(in.Container)
	// A container on another network or address than the plan's is
	// recreated there.
	moved := addr != in.IP && (addr != "" || network == "bridge" && in.Network != "" && in.Network != "bridge")
	create := in.Container == "" || ierr != nil || in.Packages != key || recreate || moved
	kind := "deploy.instance.update"
	if in.State == "new" {
		kind = "deploy.instance.create"
	}
	if create {
		if ierr == nil && in.Container != "" {
			if !t.skipDrain {
				if err := m.drain(ctx, in, dir); err != nil {
					return err
				}
			}
			if err := m.rt.Remove(ctx, journal.SystemActor(), in.Container); err != nil {
				return fmt.Errorf("remove the old container of %s: %w", in.Name(), err)
			}
		}
		// A create a daemon's end interrupted before the record knew its
		// container leaves one by the instance's name: it goes.
		if _, err := m.rt.Inspect(m.containerName(dep, in)); err == nil {
			if err := m.rt.Remove(ctx, journal.SystemActor(), m.containerName(dep, in)); err != nil {
				return fmt.Errorf("remove a leftover container of %s: %w", in.Name(), err)
			}
		}
		memory, cpus := p.cloud.limits(g.VMType)
		info, err := m.rt.Create(ctx, journal.SystemActor(), containerspec.Spec{
			Image: p.stemcells[g.Stemcell].ImageID, Name: m.containerName(dep, in), Hostname: in.ID,
			Cmd: []string{"/bin/sh", "/var/vcap/bosh/run"}, Network: network, IP: addr, Binds: m.binds(p, g, dep, in),
			Memory: memory, NanoCPUs: cpus,
		})
		if err != nil {
			return fmt.Errorf("create the container of %s: %w", in.Name(), err)
		}
		m.mu.Lock()
		in.Container, in.IP, in.Network, in.Packages, in.Disk = info.Name, info.IP, network, key, disk
		m.saveLocked()
		m.mu.Unlock()
	}
	r, err := p.render(dep, in, in.IP, all, m.jobDir, key)
	if err != nil {
		return err
	}
	if !create && !t.skipDrain {
		// The jobs' drain scripts, as they are before this update.
		if err := m.drain(ctx, in, dir); err != nil {
			return err
		}
	}
	if err := writeInstance(dir, r); err != nil {
		return err
	}
	if !create {
		if err := m.rt.Stop(ctx, in.Container, 10*time.Second); err != nil {
			return fmt.Errorf("stop %s: %w", in.Name(), err)
		}
	}
	m.mu.Lock()
	in.Hash, in.State = r.hash, "failed"
	m.saveLocked()
	m.mu.Unlock()
	if err := m.rt.Start(ctx, journal.SystemActor(), in.Container); err != nil {
		return fmt.Errorf("start %s: %w", in.Name(), err)
	}
	m.record(ctx, actor, kind, dep+"/"+in.Name(), map[string]any{"task": t.ID, "deployment": dep, "group": in.Group,
		"index": in.Index, "id": in.ID, "container": in.Container, "ip": in.IP, "recreated": create, "hash": r.hash})
	if err := m.watch(ctx, in, watch); err != nil {
		return err
	}
	if err := m.hook(ctx, in, dir, "post-start"); err != nil {
		return err
	}
	m.mu.Lock()
	in.State = "started"
	m.saveLocked()
	m.mu.Unlock()
	return nil
}

// watch waits until the instance has run for the watch time's minimum;
// its process ending before is a failure.
func (m *module) watch(ctx context.Context, in *Instance, w watchRange) error {
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := m.rt.Inspect(in.Container)
		if err != nil {
			return fmt.Errorf("%s: %w", in.Name(), err)
		}
		if !info.Running {
			return fmt.Errorf("%s is not running: its process exited %d (deploy logs: logs %s)", in.Name(), info.ExitCode, info.Name)
		}
		if time.Since(start) >= w.min {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeInstance writes an instance's rendered jobs, in place under the
// directories its container has mounted.
func writeInstance(dir string, r *rendered) error {
	byJob := map[string]files{}
	for name, b := range r.files {
		rest := strings.TrimPrefix(name, "jobs/")
		job, file, _ := strings.Cut(rest, "/")
		if byJob[job] == nil {
			byJob[job] = files{}
		}
		byJob[job][file] = b
	}
	jobs := filepath.Join(dir, "jobs")
	ents, _ := os.ReadDir(jobs)
	for _, e := range ents {
		if byJob[e.Name()] == nil {
			_ = os.RemoveAll(filepath.Join(jobs, e.Name()))
		}
	}
	for job, fl := range byJob {
		if err := writeFiles(filepath.Join(jobs, job), fl); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "bosh", "run"), []byte(r.run), 0o755)
}

// deleteInstance removes an instance's container, files and disk.
func (m *module) deleteInstance(ctx context.Context, actor journal.Actor, task int, dep string, in *Instance) {
	if in.Container != "" {
		if _, err := m.rt.Inspect(in.Container); err == nil {
			if err := m.rt.Remove(ctx, journal.SystemActor(), in.Container); err != nil {
				m.log.Warn("deploy: remove an instance's container", "instance", in.Name(), "err", err)
			}
		}
	}
	_ = os.RemoveAll(m.instDir(dep, in))
	_ = os.RemoveAll(m.diskDir(dep, in))
	m.record(ctx, actor, "deploy.instance.delete", dep+"/"+in.Name(), map[string]any{"task": task, "deployment": dep,
		"group": in.Group, "index": in.Index, "id": in.ID, "container": in.Container})
}

// lineDiff is a line diff of two manifests: "+ line", "- line", and
// unchanged lines left out.
func lineDiff(a, b string) []string {
	al, bl := splitLines(a), splitLines(b)
	// The common head and tail are left out first: a deploy's change is
	// mostly a few lines of a long manifest, and the table below is
	// quadratic in what remains.
	for len(al) > 0 && len(bl) > 0 && al[0] == bl[0] {
		al, bl = al[1:], bl[1:]
	}
	for len(al) > 0 && len(bl) > 0 && al[len(al)-1] == bl[len(bl)-1] {
		al, bl = al[:len(al)-1], bl[:len(bl)-1]
	}
	n, k := len(al), len(bl)
	if n*k > 4<<20 {
		// Too different to align cheaply: all removed, then all added.
		out := make([]string, 0, n+k)
		for _, l := range al {
			out = append(out, "- "+l)
		}
		for _, l := range bl {
			out = append(out, "+ "+l)
		}
		return out
	}
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, k+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := k - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n || j < k {
		switch {
		case i < n && j < k && al[i] == bl[j]:
			i++
			j++
		case i < n && (j == k || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, "- "+al[i])
			i++
		default:
			out = append(out, "+ "+bl[j])
			j++
		}
	}
	return out
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// sortedInstances returns a deployment's instances by group order then
// index.
func sortedInstances(list []*Instance) []*Instance {
	out := append([]*Instance(nil), list...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Index < out[j].Index
	})
	return out
}

// manifestName reads a manifest's name before its variables are
// resolved: a literal, or ((x)) given with var.x=.
func manifestName(file string, src []byte, given map[string]any) (string, error) {
	var head struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(src, &head); err != nil {
		return "", yamlError(file, src, err)
	}
	name := head.Name
	if m := varRE.FindStringSubmatch(name); m != nil && m[0] == name {
		v, ok := given[m[1]]
		if !ok {
			return "", fmt.Errorf("%s: name: ((%s)) has no value: give var.%s=", file, m[1], m[1])
		}
		name = fmt.Sprint(v)
	}
	if !nameOK(name) {
		return "", fmt.Errorf("%s: name %q: use letters, digits, - and _", file, name)
	}
	return name, nil
}

// hook runs each job's bin/NAME (post-start, post-deploy) in the
// instance, where the job has one; a non-zero exit fails the instance.
func (m *module) hook(ctx context.Context, in *Instance, dir, name string) error {
	jobs, _ := os.ReadDir(filepath.Join(dir, "jobs"))
	for _, j := range jobs {
		if _, err := os.Stat(filepath.Join(dir, "jobs", j.Name(), "bin", name)); err != nil {
			continue
		}
		out, code, err := m.rt.Exec(ctx, journal.SystemActor(), in.Container, []string{"sh", "/var/vcap/jobs/" + j.Name() + "/bin/" + name})
		if err != nil {
			return fmt.Errorf("%s: %s/bin/%s: %w", in.Name(), j.Name(), name, err)
		}
		if code != 0 {
			return fmt.Errorf("%s: %s/bin/%s exited %d: %s", in.Name(), j.Name(), name, code, strings.TrimSpace(out))
		}
	}
	return nil
}

// drain runs each job's bin/drain in a running instance before it is
// stopped, updated or recreated, as BOSH does: its output is how many
// seconds to wait before the stop (at most a minute here; a negative,
// dynamic drain is waited for as its absolute value, once).
func (m *module) drain(ctx context.Context, in *Instance, dir string) error {
	info, err := m.rt.Inspect(in.Container)
	if err != nil || !info.Running {
		return nil
	}
	jobs, _ := os.ReadDir(filepath.Join(dir, "jobs"))
	for _, j := range jobs {
		if _, err := os.Stat(filepath.Join(dir, "jobs", j.Name(), "bin", "drain")); err != nil {
			continue
		}
		out, code, err := m.rt.Exec(ctx, journal.SystemActor(), in.Container, []string{"sh", "/var/vcap/jobs/" + j.Name() + "/bin/drain", "job_changed", "hash_changed"})
		if err != nil {
			return fmt.Errorf("%s: %s/bin/drain: %w", in.Name(), j.Name(), err)
		}
		if code != 0 {
			return fmt.Errorf("%s: %s/bin/drain exited %d: %s", in.Name(), j.Name(), code, strings.TrimSpace(out))
		}
		lines := splitLines(strings.TrimSpace(out))
		secs := 0
		if len(lines) > 0 {
			if _, err := fmt.Sscan(lines[len(lines)-1], &secs); err != nil {
				return fmt.Errorf("%s: %s/bin/drain printed %q, not a number of seconds", in.Name(), j.Name(), lines[len(lines)-1])
			}
		}
		wait := time.Duration(min(max(secs, -secs), 60)) * time.Second
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// implicitStemcells makes a stemcell of an image tagged
// stemcell/NAME:VERSION for each stemcell the manifest names with a
// version that is not uploaded.
func (m *module) implicitStemcells(ctx context.Context, actor journal.Actor, man *Manifest) {
	for _, sc := range man.Stemcells {
		name := sc.Name
		if name == "" {
			name = sc.OS
		}
		if sc.Version == "" || sc.Version == "latest" {
			continue
		}
		m.mu.Lock()
		known := m.st.Stemcells[name+"/"+sc.Version] != nil
		m.mu.Unlock()
		if known {
			continue
		}
		ref := "stemcell/" + name + ":" + sc.Version
		if _, err := m.rt.ImageID(ref); err != nil {
			continue
		}
		if _, err := m.uploadStemcell(ctx, actor, ref, name, sc.Version); err != nil {
			m.log.Warn("deploy: an image tagged as a stemcell", "image", ref, "err", err)
		}
	}
}
