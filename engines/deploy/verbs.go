package deploy

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/cgstat"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) Verbs() []engines.Verb {
	dep := []dsl.Arg{{Name: "DEPLOYMENT", Required: true, Help: "a deployment's name (deployments)"}}
	inst := []dsl.Arg{dep[0], {Name: "INSTANCE", Help: "GROUP, GROUP/INDEX or GROUP/UUID (default: every instance)"}}
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "cloud-config",
			Access:  dsl.AccessRead,
			Summary: "the cloud config, as last updated",
		}, Run: m.runCloudConfig},
		{Spec: dsl.Spec{
			Verb:    "cloud-config update",
			Access:  dsl.AccessHost,
			Summary: "replace the cloud config: AZs, vm_types (ram MB, cpu → container limits), disk_types, networks, compilation",
			Help: "cloud-config update FILE answers its diff; the next deploys are checked against it (an\n" +
				"unknown vm_type, network, az or persistent_disk_type is refused) and a vm_type's\n" +
				"cloud_properties ram (MB) and cpu become the container's memory= and cpus=.\n\n  cloud-config update ./cloud.yml",
			Args:       []dsl.Arg{{Name: "FILE", Required: true, Help: "the cloud config, a path (./cloud.yml)"}},
			Options:    []dsl.Option{{Name: "source", Help: "the file's text, sent by the CLI"}},
			ClientFile: "FILE",
		}, Run: m.runCloudConfigUpdate},
		{Spec: dsl.Spec{
			Verb:    "deploy",
			Access:  dsl.AccessHost,
			Summary: "deploy a BOSH v2 manifest: its instances are runtime containers, rolled with canaries",
			Help: "deploy MANIFEST answers the diff against the running deployment, then runs a task:\n" +
				"packages compiled on the stemcell, each instance group rolled in order, canaries first\n" +
				"(each must stay running for canary_watch_time), then max_in_flight at a time. A failing\n" +
				"canary stops the task with the other instances untouched. The CLI sends a ./path's content.\n\n" +
				"  deploy ./redis.yml\n  deploy ./redis.yml dry-run\n  deploy ./redis.yml recreate",
			Args: []dsl.Arg{{Name: "MANIFEST", Required: true, Help: "the manifest, a path (./m.yml)"}},
			Flags: []dsl.Flag{{Name: "dry-run", Help: "check, render and show the diff; change nothing"}, {Name: "recreate", Help: "recreate every instance's container"},
				{Name: "skip-drain", Help: "run no job's drain script"},
				{Name: "fix", Help: "also recreate unresponsive instances (always done: an instance whose container is gone or stopped is due)"}},
			Options:    []dsl.Option{{Name: "source", Help: "the manifest's text, sent by the CLI"}, {Name: "vars-file", Meta: "PATH", Help: "a YAML file of variables' values (an absolute path, read with your permissions), as bosh -l"}},
			Bag:        true,
			BagPrefix:  "var.",
			ClientFile: "MANIFEST",
		}, Run: m.runDeploy},
		{Spec: dsl.Spec{
			Verb:    "deploy cck",
			Access:  dsl.AccessHost,
			Summary: "cloud check: instances whose container is missing or not running, or whose disk is gone",
			Help:    "deploy cck DEPLOYMENT answers each problem and BOSH's resolution; with auto it applies it\n(recreate the VM, with its persistent disk), as bosh cck --auto.",
			Args:    dep,
			Flags:   []dsl.Flag{{Name: "auto", Help: "apply the resolutions"}},
		}, Run: m.runCck},
		{Spec: dsl.Spec{
			Verb:    "deploy delete",
			Access:  dsl.AccessHost,
			Summary: "delete a deployment: its containers, rendered jobs and persistent disks",
			Args:    dep,
		}, Run: m.runDelete},
		{Spec: dsl.Spec{
			Verb:    "deploy instances",
			Access:  dsl.AccessRead,
			Summary: "a deployment's instances: group/index, id, container, address, process state, disk",
			Help:    "deploy instances DEPLOYMENT answers a row per instance; ps adds each job process's state (from its\npid file in the instance), details the container id, the disk's path and bootstrap.",
			Args:    dep,
			Flags:   []dsl.Flag{{Name: "ps", Help: "each process's state, as bosh instances --ps"}, {Name: "details", Help: "container id, disk path, bootstrap, as bosh instances --details"}},
		}, Run: m.runInstances},
		{Spec: dsl.Spec{
			Verb:    "deploy recreate",
			Access:  dsl.AccessHost,
			Summary: "recreate instances' containers (with their persistent disks), as bosh recreate",
			Args:    inst,
		}, Run: m.runLifecycle("recreate")},
		{Spec: dsl.Spec{
			Verb:    "deploy restart",
			Access:  dsl.AccessHost,
			Summary: "stop then start instances, as bosh restart",
			Args:    inst,
		}, Run: m.runLifecycle("restart")},
		{Spec: dsl.Spec{
			Verb:    "deploy resurrection",
			Access:  dsl.AccessHost,
			Summary: "turn the resurrector on or off (bosh update-resurrection)",
			Args:    []dsl.Arg{{Name: "STATE", Required: true, Help: "on or off"}},
		}, Run: m.runResurrection},
		{Spec: dsl.Spec{
			Verb:    "deploy run-errand",
			Access:  dsl.AccessHost,
			Summary: "run an errand (an instance group with lifecycle: errand) once, as bosh run-errand",
			Args:    append(append([]dsl.Arg(nil), dep...), dsl.Arg{Name: "ERRAND", Required: true, Help: "the errand's instance group"}),
		}, Run: m.runRunErrand},
		{Spec: dsl.Spec{
			Verb:    "deploy ssh",
			Access:  dsl.AccessHost,
			Summary: "run a command in an instance, as bosh ssh -c (output answered when it ends)",
			Help:    "deploy ssh DEPLOYMENT GROUP/INDEX -- CMD ARGS… runs it in the instance's container (runc exec).\nFor a shell, exec DEPLOYMENT.GROUP.INDEX -- sh.\n\n  deploy ssh redis redis-master/0 -- cat /var/vcap/store/boots",
			Args:    []dsl.Arg{dep[0], {Name: "INSTANCE", Required: true, Help: "GROUP/INDEX or GROUP/UUID"}},
			Raw:     true,
		}, Run: m.runSSH},
		{Spec: dsl.Spec{
			Verb:    "deploy start",
			Access:  dsl.AccessHost,
			Summary: "start stopped instances, as bosh start",
			Args:    inst,
		}, Run: m.runLifecycle("start")},
		{Spec: dsl.Spec{
			Verb:    "deploy stop",
			Access:  dsl.AccessHost,
			Summary: "stop instances (the resurrector leaves them stopped), as bosh stop",
			Args:    inst,
		}, Run: m.runLifecycle("stop")},
		{Spec: dsl.Spec{
			Verb:    "deploy task",
			Access:  dsl.AccessRead,
			Summary: "a task's events, from the journal (bosh task N)",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "the task's number (deploy tasks)"}},
		}, Run: m.runTask},
		{Spec: dsl.Spec{
			Verb:    "deploy task cancel",
			Access:  dsl.AccessHost,
			Summary: "cancel a running task: it stops between steps, and is journaled deploy.task.cancel",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "the task's number (deploy tasks)"}},
		}, Run: m.runTaskCancel},
		{Spec: dsl.Spec{
			Verb:    "deploy tasks",
			Access:  dsl.AccessRead,
			Summary: "the director's tasks, newest first; a task's events: events where 'data.task == N'",
		}, Run: m.runTasks},
		{Spec: dsl.Spec{
			Verb:    "deploy vms",
			Access:  dsl.AccessRead,
			Summary: "a deployment's VMs (containers), with vitals: CPU, memory and persistent disk use",
			Help:    "deploy vms DEPLOYMENT answers each instance's container, address and state; with vitals\nalso CPU % (over 200 ms), memory used / limit, pids and the persistent disk's bytes, as bosh vms --vitals.",
			Args:    dep,
			Flags:   []dsl.Flag{{Name: "vitals", Help: "read CPU, memory, pids and disk use"}},
		}, Run: m.runVMs},
		{Spec: dsl.Spec{
			Verb:    "deployments",
			Access:  dsl.AccessRead,
			Summary: "the deployments, with their releases, stemcells and instance count",
		}, Run: m.runDeployments},
		{Spec: dsl.Spec{
			Verb:    "release inspect",
			Access:  dsl.AccessRead,
			Summary: "a release's jobs and packages with their fingerprints",
			Args:    []dsl.Arg{{Name: "RELEASE", Required: true, Help: "NAME/VERSION"}},
		}, Run: m.runReleaseInspect},
		{Spec: dsl.Spec{
			Verb:    "release upload",
			Access:  dsl.AccessHost,
			Summary: "upload a BOSH release from a directory or .tgz (read with your permissions)",
			Help: "release upload PATH reads release.MF, jobs/JOB/{spec,monit,templates/} and\n" +
				"packages/PKG/{spec,packaging} with the spec's files from src/ or blobs/, and stores each\n" +
				"job and package by fingerprint. Packages are compiled at the first deploy that needs them.\n\n" +
				"  release upload /home/me/httpd-release",
			Args: []dsl.Arg{{Name: "PATH", Required: true, Help: "an absolute path: a release directory or tarball"}},
		}, Run: m.runReleaseUpload},
		{Spec: dsl.Spec{
			Verb:    "releases",
			Access:  dsl.AccessRead,
			Summary: "the uploaded releases",
		}, Run: m.runReleases},
		{Spec: dsl.Spec{
			Verb:    "stemcell upload",
			Access:  dsl.AccessHost,
			Summary: "make an image of the runtime's store a stemcell",
			Help:    "stemcell upload IMAGE name=N version=V: instances and compilation containers are made from it.\n\n  stemcell upload busybox name=bosh-busybox version=1",
			Args:    []dsl.Arg{{Name: "IMAGE", Required: true, Help: "an image of the store (image list)"}},
			Options: []dsl.Option{{Name: "name", Help: "the stemcell's name (its os in a manifest)"}, {Name: "version", Help: "its version"}},
		}, Run: m.runStemcellUpload},
		{Spec: dsl.Spec{
			Verb:    "stemcells",
			Access:  dsl.AccessRead,
			Summary: "the uploaded stemcells",
		}, Run: m.runStemcells},
	}
}

func flush(r engines.Request) {
	if f, ok := r.(engines.Flusher); ok {
		_ = f.Flush()
	}
}

func (m *module) runDeploy(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["MANIFEST"]
	file := filepath.Base(w.Text)
	var src []byte
	if s, ok := st.Opt("source"); ok {
		src = []byte(s.Text)
	} else {
		if !filepath.IsAbs(w.Text) {
			return engines.Errorf(wire.InvalidArgument, w, "%s: give ./path for the CLI to send it, or an absolute path", w.Text)
		}
		a := r.Actor()
		if err := ascaller.Do(ascaller.Cred{UID: a.UID, GID: a.GID, Groups: a.Groups}, func() error {
			var err error
			src, err = os.ReadFile(w.Text)
			return err
		}); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
	}
	out := func(row map[string]any) {
		_ = r.Row(row)
		flush(r)
	}
	vars := map[string]any{}
	if w, ok := st.Opt("vars-file"); ok {
		if !filepath.IsAbs(w.Text) {
			return engines.Errorf(wire.InvalidArgument, w, "vars-file=%s: give an absolute path", w.Text)
		}
		var b []byte
		a := r.Actor()
		if err := ascaller.Do(ascaller.Cred{UID: a.UID, GID: a.GID, Groups: a.Groups}, func() error {
			var err error
			b, err = os.ReadFile(w.Text)
			return err
		}); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		if err := yaml.Unmarshal(b, &vars); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", yamlError(filepath.Base(w.Text), b, err))
		}
	}
	for _, kv := range st.Bag {
		vars[strings.TrimPrefix(kv.Key, "var.")] = kv.Value.Text
	}
	err := m.deploy(ctx, r.Actor(), file, src, deployOpts{dryRun: st.Flags["dry-run"], recreate: st.Flags["recreate"], skipDrain: st.Flags["skip-drain"], vars: vars}, out)
	if err != nil {
		return wire.Errorf(wire.FailedPrecondition, "%v", err)
	}
	return nil
}

func (m *module) runDelete(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["DEPLOYMENT"]
	m.mu.Lock()
	d := m.st.Deployments[w.Text]
	m.mu.Unlock()
	if d == nil {
		return engines.Errorf(wire.NotFound, w, "no deployment %s (deployments lists them)", w.Text)
	}
	lock := m.depLock(d.Name)
	lock.Lock()
	defer lock.Unlock()
	t, ctx := m.startTask(ctx, r.Actor(), d.Name, "delete deployment")
	networks := map[string]bool{}
	for _, in := range d.Instances {
		if in.Network != "" && in.Network != "bridge" {
			networks[in.Network] = true
		}
	}
	for _, in := range sortedInstances(d.Instances) {
		m.deleteInstance(ctx, r.Actor(), t.ID, d.Name, in)
		_ = r.Row(map[string]any{"instance": in.Name(), "id": in.ID, "state": "deleted"})
	}
	_ = os.RemoveAll(filepath.Join(m.dir, "instances", d.Name))
	_ = os.RemoveAll(filepath.Join(m.dir, "disks", d.Name))
	m.mu.Lock()
	delete(m.st.Deployments, d.Name)
	delete(m.st.Variables, d.Name)
	m.saveLocked()
	// A manual network's bridge goes with the last deployment on it (the
	// next deploy onto it makes it again).
	for _, other := range m.st.Deployments {
		for _, in := range other.Instances {
			delete(networks, in.Network)
		}
	}
	m.mu.Unlock()
	for name := range networks {
		if err := m.rt.RemoveNetwork(ctx, journal.SystemActor(), name); err != nil {
			m.log.Warn("deploy delete: remove the manual network", "network", name, "err", err)
		}
	}
	m.record(ctx, r.Actor(), "deploy.delete", d.Name, map[string]any{"task": t.ID, "deployment": d.Name})
	m.endTask(ctx, r.Actor(), t, nil)
	return nil
}

func (m *module) runInstances(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["DEPLOYMENT"]
	m.mu.Lock()
	d := m.st.Deployments[w.Text]
	var list []Instance
	azs := map[string]string{} // instance name -> AZ, as the manifest places it
	if d != nil {
		man, _ := parseManifest(w.Text, []byte(d.Resolved))
		for _, in := range sortedInstances(d.Instances) {
			list = append(list, *in)
			if man != nil {
				for i := range man.InstanceGroups {
					if g := &man.InstanceGroups[i]; g.Name == in.Group {
						azs[in.Name()] = azOf(g, in.Index)
					}
				}
			}
		}
	}
	m.mu.Unlock()
	if d == nil {
		return engines.Errorf(wire.NotFound, w, "no deployment %s (deployments lists them)", w.Text)
	}
	for _, in := range list {
		// The process state is the runtime's now, not the record's.
		ps := "missing"
		if info, err := m.rt.Inspect(in.Container); err == nil {
			ps = info.Status
			if info.Running {
				ps = "running"
			}
		}
		if in.Container == "" {
			ps = "not created"
		}
		row := map[string]any{"instance": in.Name(), "id": in.ID, "container": in.Container, "ip": in.IP,
			"process_state": ps, "desired": in.State, "disk": in.Disk, "hash": in.Hash}
		if az, ok := azs[in.Name()]; ok {
			row["az"] = az
		}
		st := r.Statement()
		if st.Flags["details"] {
			if info, err := m.rt.Inspect(in.Container); err == nil {
				row["vm_cid"] = info.ID
			}
			if in.Disk {
				row["disk_path"] = m.diskDir(w.Text, &in)
			}
			row["bootstrap"] = in.Index == 0
		}
		if st.Flags["ps"] && ps == "running" {
			row["processes"] = m.processes(ctx, in.Container)
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runResurrection(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["STATE"]
	var on bool
	switch w.Text {
	case "on":
		on = true
	case "off":
	default:
		return engines.Errorf(wire.InvalidArgument, w, "resurrection is on or off, not %q", w.Text)
	}
	m.mu.Lock()
	m.st.Resurrection = on
	m.saveLocked()
	m.mu.Unlock()
	m.record(ctx, r.Actor(), "deploy.resurrection", "resurrection", map[string]any{"enabled": on})
	return r.Row(map[string]any{"resurrection": w.Text})
}

func (m *module) runTasks(ctx context.Context, r engines.Request) error {
	m.mu.Lock()
	tasks := make([]Task, len(m.st.Tasks))
	for i, t := range m.st.Tasks {
		tasks[len(tasks)-1-i] = *t
	}
	m.mu.Unlock()
	for _, t := range tasks {
		if err := r.Row(t); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runDeployments(ctx context.Context, r engines.Request) error {
	m.mu.Lock()
	var rows []map[string]any
	for _, name := range names(m.st.Deployments) {
		d := m.st.Deployments[name]
		man, _ := parseManifest(name, []byte(d.Resolved))
		var rels, scs []string
		if man != nil {
			for _, x := range man.Releases {
				if rel := m.st.findRelease(x.Name, x.Version); rel != nil {
					rels = append(rels, rel.Name+"/"+rel.Version)
				}
			}
			for _, x := range man.Stemcells {
				n := x.Name
				if n == "" {
					n = x.OS
				}
				if sc := m.st.findStemcell(n, x.Version); sc != nil {
					scs = append(scs, sc.Name+"/"+sc.Version)
				}
			}
		}
		rows = append(rows, map[string]any{"name": name, "releases": strings.Join(rels, ", "), "stemcells": strings.Join(scs, ", "), "instances": len(d.Instances)})
	}
	m.mu.Unlock()
	for _, row := range rows {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runReleaseUpload(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["PATH"]
	rel, added, err := m.uploadRelease(ctx, r.Actor(), w.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "%v", err)
	}
	return r.Row(map[string]any{"name": rel.Name, "version": rel.Version, "jobs": names(rel.Jobs), "packages": names(rel.Packages), "new": added})
}

func (m *module) runReleases(ctx context.Context, r engines.Request) error {
	m.mu.Lock()
	var rows []map[string]any
	for _, key := range names(m.st.Releases) {
		rel := m.st.Releases[key]
		rows = append(rows, map[string]any{"name": rel.Name, "version": rel.Version, "jobs": names(rel.Jobs), "packages": names(rel.Packages)})
	}
	m.mu.Unlock()
	for _, row := range rows {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runReleaseInspect(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["RELEASE"]
	m.mu.Lock()
	rel := m.st.Releases[w.Text]
	m.mu.Unlock()
	if rel == nil {
		return engines.Errorf(wire.NotFound, w, "no release %s (releases lists them as NAME/VERSION)", w.Text)
	}
	for _, n := range names(rel.Jobs) {
		j := rel.Jobs[n]
		props := names(j.Properties)
		if err := r.Row(map[string]any{"job": n, "fingerprint": j.Fingerprint, "packages": j.Packages, "properties": props}); err != nil {
			return err
		}
	}
	for _, n := range names(rel.Packages) {
		p := rel.Packages[n]
		deps := append([]string(nil), p.Dependencies...)
		sort.Strings(deps)
		if err := r.Row(map[string]any{"package": n, "fingerprint": p.Fingerprint, "dependencies": deps}); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runStemcellUpload(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["IMAGE"]
	name, _ := st.Opt("name")
	version, _ := st.Opt("version")
	sc, err := m.uploadStemcell(ctx, r.Actor(), w.Text, name.Text, version.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "%v", err)
	}
	return r.Row(sc)
}

func (m *module) runStemcells(ctx context.Context, r engines.Request) error {
	m.mu.Lock()
	var list []Stemcell
	for _, key := range names(m.st.Stemcells) {
		list = append(list, *m.st.Stemcells[key])
	}
	m.mu.Unlock()
	for _, sc := range list {
		if err := r.Row(sc); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runLifecycle(verb string) engines.Handler {
	return func(ctx context.Context, r engines.Request) error {
		st := r.Statement()
		sel := ""
		if w, ok := st.Args["INSTANCE"]; ok {
			sel = w.Text
		}
		err := m.lifecycle(ctx, r.Actor(), verb, st.Args["DEPLOYMENT"].Text, sel, func(row map[string]any) {
			_ = r.Row(row)
			flush(r)
		})
		if err != nil {
			return wire.Errorf(wire.FailedPrecondition, "%v", err)
		}
		return nil
	}
}

func (m *module) runCck(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	err := m.cck(ctx, r.Actor(), st.Args["DEPLOYMENT"].Text, st.Flags["auto"], func(p problem) { _ = r.Row(p) })
	if err != nil {
		return wire.Errorf(wire.FailedPrecondition, "%v", err)
	}
	return nil
}

func (m *module) runRunErrand(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	err := m.runErrand(ctx, r.Actor(), st.Args["DEPLOYMENT"].Text, st.Args["ERRAND"].Text, func(row map[string]any) {
		_ = r.Row(row)
		flush(r)
	})
	if err != nil {
		return wire.Errorf(wire.FailedPrecondition, "%v", err)
	}
	return nil
}

func (m *module) runCloudConfig(ctx context.Context, r engines.Request) error {
	m.mu.Lock()
	src := m.st.CloudConfig
	m.mu.Unlock()
	for _, line := range splitLines(src) {
		if err := r.Line(line); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runCloudConfigUpdate(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["FILE"]
	s, ok := st.Opt("source")
	if !ok {
		return engines.Errorf(wire.InvalidArgument, w, "%s: give ./path for the CLI to send it", w.Text)
	}
	_, diff, err := m.updateCloudConfig(ctx, r.Actor(), filepath.Base(w.Text), []byte(s.Text))
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "%v", err)
	}
	for _, l := range diff {
		if err := r.Row(map[string]any{"diff": l}); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) taskByID(w dsl.Word) (Task, error) {
	id, err := strconv.Atoi(w.Text)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || id < 1 || id > len(m.st.Tasks) {
		return Task{}, engines.Errorf(wire.NotFound, w, "no task %s (deploy tasks lists them)", w.Text)
	}
	return *m.st.Tasks[id-1], nil
}

func (m *module) runTask(ctx context.Context, r engines.Request) error {
	t, err := m.taskByID(r.Statement().Args["ID"])
	if err != nil {
		return err
	}
	it := m.audit.Scan(journal.Query{From: t.FirstSeq, Kind: "deploy.*"})
	defer it.Close()
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			return err
		}
		if taskOf(ev.Data["task"]) != t.ID {
			continue
		}
		if err := r.Event(ev); err != nil {
			return err
		}
		if k := ev.Kind; k == "deploy.task.done" || k == "deploy.task.fail" || k == "deploy.task.cancel" {
			break
		}
	}
	return it.Err()
}

func (m *module) runTaskCancel(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["ID"]
	t, err := m.taskByID(w)
	if err != nil {
		return err
	}
	if !m.cancelTask(t.ID) {
		return engines.Errorf(wire.FailedPrecondition, w, "task %d is %s, not running", t.ID, t.State)
	}
	return r.Row(map[string]any{"task": t.ID, "state": "cancelling"})
}

// taskOf reads an event's data.task, however its number was decoded.
func taskOf(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case uint64:
		return int(n)
	case float64:
		return int(n)
	case int:
		return n
	}
	return -1
}

func (m *module) runVMs(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["DEPLOYMENT"]
	m.mu.Lock()
	d := m.st.Deployments[w.Text]
	var list []Instance
	if d != nil {
		for _, in := range sortedInstances(d.Instances) {
			list = append(list, *in)
		}
	}
	m.mu.Unlock()
	if d == nil {
		return engines.Errorf(wire.NotFound, w, "no deployment %s (deployments lists them)", w.Text)
	}
	vitals := st.Flags["vitals"]
	first := map[string]cgstat.Stats{}
	if vitals {
		for _, in := range list {
			if s, err := m.rt.Stats(in.Container); err == nil {
				first[in.ID] = s
			}
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, in := range list {
		row := map[string]any{"instance": in.Name(), "id": in.ID, "container": in.Container, "ip": in.IP}
		info, err := m.rt.Inspect(in.Container)
		row["state"] = "missing"
		if err == nil {
			row["state"] = info.Status
		}
		if vitals {
			if s, err := m.rt.Stats(in.Container); err == nil {
				if f, ok := first[in.ID]; ok && s.SystemUsage > f.SystemUsage {
					row["cpu_percent"] = float64(s.CPUUsage-f.CPUUsage) / float64(s.SystemUsage-f.SystemUsage) * float64(s.OnlineCPUs) * 100
				}
				row["memory_bytes"], row["memory_limit_bytes"], row["pids"] = s.MemoryUsage, s.MemoryLimit, s.PidsCurrent
			}
			if in.Disk {
				row["disk_bytes"] = dirBytes(m.diskDir(d.Name, &in))
			}
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func (m *module) runSSH(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	dw, iw := st.Args["DEPLOYMENT"], st.Args["INSTANCE"]
	if len(st.Raw) == 0 {
		return wire.Errorf(wire.InvalidArgument, "deploy ssh: no command; usage: deploy ssh DEPLOYMENT GROUP/INDEX -- CMD ARGS…")
	}
	m.mu.Lock()
	d := m.st.Deployments[dw.Text]
	var list []*Instance
	var err error
	if d != nil {
		list, err = selectInstances(d, iw.Text)
	}
	var in Instance
	if err == nil && len(list) == 1 {
		in = *list[0]
	}
	m.mu.Unlock()
	switch {
	case d == nil:
		return engines.Errorf(wire.NotFound, dw, "no deployment %s (deployments lists them)", dw.Text)
	case err != nil:
		return engines.Errorf(wire.NotFound, iw, "%v", err)
	case len(list) != 1:
		return engines.Errorf(wire.InvalidArgument, iw, "%s names %d instances: give GROUP/INDEX", iw.Text, len(list))
	}
	out, code, err := m.rt.Exec(ctx, r.Actor(), in.Container, st.Raw)
	if err != nil {
		return wire.Errorf(wire.FailedPrecondition, "%s: %v", in.Name(), err)
	}
	if pa, ok := r.(engines.ProcessAnswerer); ok {
		if out != "" {
			if err := pa.Output(1, out); err != nil {
				return err
			}
		}
		return pa.Exit(code)
	}
	return r.Row(map[string]any{"output": out, "exit_code": code})
}

// psScript reports each job process's state from its pid file.
const psScript = `for f in /var/vcap/sys/run/*/*.pid; do [ -f "$f" ] || continue; ` +
	`if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$f running"; else echo "$f failing"; fi; done`

// processes asks an instance for its job processes' states.
func (m *module) processes(ctx context.Context, container string) []map[string]string {
	out, _, err := m.rt.Exec(ctx, journal.SystemActor(), container, []string{"sh", "-c", psScript})
	if err != nil {
		return nil
	}
	var procs []map[string]string
	for _, line := range splitLines(out) {
		path, state, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(path, "/var/vcap/sys/run/"), ".pid")
		job, name, _ := strings.Cut(rel, "/")
		procs = append(procs, map[string]string{"job": job, "process": name, "state": state})
	}
	return procs
}
