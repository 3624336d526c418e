package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cairnhq/cairn/engines/deploy/erb"
)

// process is one process of a job, from its bpm.yml.
type process struct {
	Name       string            `yaml:"name"`
	Executable string            `yaml:"executable"`
	Args       []string          `yaml:"args"`
	Env        map[string]string `yaml:"env"`
	Hooks      struct {
		PreStart string `yaml:"pre_start"`
	} `yaml:"hooks"`
	job string
}

// monitCheck is a monit file's check process, when the job has no bpm.yml.
type monitCheck struct {
	name, pidfile, start string
}

// plan is a deployment's model, resolved against the uploaded releases
// and stemcells: what every instance runs.
type plan struct {
	man       *Manifest
	releases  map[string]*Release  // by name
	stemcells map[string]*Stemcell // by alias
	// jobs are each group's jobs, resolved.
	jobs map[string][]*Job
	// cloud is the cloud config the manifest was checked against; nil
	// for none.
	cloud *CloudConfig
}

// deployedPlan is the plan of a deployment as deployed: its resolved
// manifest (src) parsed and checked against what was uploaded.
func (m *module) deployedPlan(dep, src string) (*plan, error) {
	man, err := parseManifest(dep, []byte(src))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.resolve(man)
}

// resolve checks a manifest against what was uploaded: every release,
// stemcell and job exists.
func (s *state) resolve(man *Manifest) (*plan, error) {
	p := &plan{man: man, releases: map[string]*Release{}, stemcells: map[string]*Stemcell{}, jobs: map[string][]*Job{}}
	if man.cloud != nil {
		// A v1 manifest carries its own, as BOSH's v1 did.
		if err := man.cloud.check(man); err != nil {
			return nil, err
		}
		p.cloud = man.cloud
	} else if s.CloudConfig != "" {
		c, err := parseCloudConfig("cloud-config", []byte(s.CloudConfig))
		if err != nil {
			return nil, err
		}
		if err := c.check(man); err != nil {
			return nil, err
		}
		p.cloud = c
	}
	for _, r := range man.Releases {
		rel := s.findRelease(r.Name, r.Version)
		if rel == nil {
			return nil, fmt.Errorf("releases: %s/%s is not uploaded (releases lists them; release upload DIR)", r.Name, r.Version)
		}
		p.releases[r.Name] = rel
	}
	for _, sc := range man.Stemcells {
		name := sc.Name
		if name == "" {
			name = sc.OS
		}
		st := s.findStemcell(name, sc.Version)
		if st == nil {
			return nil, fmt.Errorf("stemcells: %s/%s is not uploaded (stemcells lists them; stemcell upload IMAGE name= version=)", name, sc.Version)
		}
		alias := sc.Alias
		if alias == "" {
			alias = name
		}
		p.stemcells[alias] = st
	}
	for _, g := range man.InstanceGroups {
		if _, ok := p.stemcells[g.Stemcell]; !ok {
			if len(man.Stemcells) == 1 && g.Stemcell == "" {
				g.Stemcell = man.Stemcells[0].Alias
			} else {
				return nil, fmt.Errorf("instance_groups %s: stemcell %q is not an alias in the stemcells block", g.Name, g.Stemcell)
			}
		}
		for _, j := range g.Jobs {
			rel := p.releases[j.Release]
			if rel == nil {
				return nil, fmt.Errorf("instance_groups %s: job %s: release %q is not in the releases block", g.Name, j.Name, j.Release)
			}
			job := rel.Jobs[j.Name]
			if job == nil {
				return nil, fmt.Errorf("instance_groups %s: job %s is not in release %s/%s", g.Name, j.Name, rel.Name, rel.Version)
			}
			p.jobs[g.Name] = append(p.jobs[g.Name], job)
		}
	}
	return p, nil
}

func (s *state) findRelease(name, version string) *Release {
	if version != "" && version != "latest" {
		return s.Releases[name+"/"+version]
	}
	var best *Release
	for _, r := range s.Releases {
		if r.Name == name && (best == nil || versionLess(best.Version, r.Version)) {
			best = r
		}
	}
	return best
}

func (s *state) findStemcell(name, version string) *Stemcell {
	if version != "" && version != "latest" {
		return s.Stemcells[name+"/"+version]
	}
	var best *Stemcell
	for _, st := range s.Stemcells {
		if st.Name == name && (best == nil || versionLess(best.Version, st.Version)) {
			best = st
		}
	}
	return best
}

// versionLess compares dotted versions number by number.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		var x, y int
		_, e1 := fmt.Sscan(as[i], &x)
		_, e2 := fmt.Sscan(bs[i], &y)
		if e1 == nil && e2 == nil {
			return x < y
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

func (p *plan) group(name string) *InstanceGroup {
	for i := range p.man.InstanceGroups {
		if p.man.InstanceGroups[i].Name == name {
			return &p.man.InstanceGroups[i]
		}
	}
	return nil
}

// packages are the group's packages with their dependencies, each once,
// dependencies first.
func (p *plan) packages(g *InstanceGroup) []*Package {
	var out []*Package
	seen := map[string]bool{}
	var visit func(rel *Release, name string)
	visit = func(rel *Release, name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		pk := rel.Packages[name]
		for _, d := range pk.Dependencies {
			visit(rel, d)
		}
		out = append(out, pk)
	}
	for i, j := range g.Jobs {
		rel := p.releases[j.Release]
		for _, name := range p.jobs[g.Name][i].Packages {
			visit(rel, name)
		}
	}
	return out
}

// jobProps are a job's properties: each its spec declares, from the
// manifest's job properties, else the group's, else the manifest's
// global ones, else the spec's default; nested by the dots of the names.
func jobProps(job *Job, ref JobRef, g *InstanceGroup, man *Manifest) map[string]any {
	props := map[string]any{}
	for name, def := range job.Properties {
		var v any
		found := false
		for _, src := range []map[string]any{ref.Properties, g.Properties, man.Properties} {
			if x, ok := lookupDotted(src, name); ok {
				v, found = x, true
				break
			}
		}
		if !found && def.Default != nil {
			v, found = def.Default, true
		}
		if found {
			setDotted(props, name, erb.Normalize(v))
		}
	}
	return props
}

func lookupDotted(m map[string]any, name string) (any, bool) {
	var cur any = m
	for _, part := range strings.Split(name, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func setDotted(m map[string]any, name string, v any) {
	parts := strings.Split(name, ".")
	for _, part := range parts[:len(parts)-1] {
		next, ok := m[part].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[part] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// rendered is an instance's jobs as rendered for it.
type rendered struct {
	files files // jobs/JOB/...
	run   string
	hash  string
}

// render renders every job of inst's group for it, at address ip (empty
// before its container exists: the render then checks the templates).
// jobDir reads a job's stored files.
func (p *plan) render(deployment string, inst *Instance, ip string, all []*Instance, jobDir func(fp string) string, pkgKey string) (*rendered, error) {
	g := p.group(inst.Group)
	out := &rendered{files: files{}}
	spec := map[string]any{"address": ip, "ip": ip, "index": int64(inst.Index), "id": inst.ID, "name": inst.Group,
		"deployment": deployment, "az": azOf(g, inst.Index), "bootstrap": inst.Index == 0}
	var procs []process
	var checks []monitCheck
	var jobNames []string
	for i, ref := range g.Jobs {
		job := p.jobs[g.Name][i]
		jobNames = append(jobNames, job.Name)
		props := jobProps(job, ref, g, p.man)
		ctx := &erb.Context{Properties: props, Spec: spec, Links: p.links(job, ref, all, jobDir)}
		dir := jobDir(job.Fingerprint)
		srcs := make([]string, 0, len(job.Templates))
		for src := range job.Templates {
			srcs = append(srcs, src)
		}
		sort.Strings(srcs)
		for _, src := range srcs {
			b, err := os.ReadFile(filepath.Join(dir, "templates", src))
			if err != nil {
				return nil, err
			}
			text, err := erb.Render(job.Name+"/templates/"+src, string(b), ctx)
			if err != nil {
				return nil, err
			}
			out.files["jobs/"+job.Name+"/"+job.Templates[src]] = []byte(text)
		}
		if job.Monit {
			b, err := os.ReadFile(filepath.Join(dir, "monit"))
			if err != nil {
				return nil, err
			}
			text, err := erb.Render(job.Name+"/monit", string(b), ctx)
			if err != nil {
				return nil, err
			}
			out.files["jobs/"+job.Name+"/monit"] = []byte(text)
		}
		if bpm, ok := out.files["jobs/"+job.Name+"/config/bpm.yml"]; ok {
			var doc struct {
				Processes []process `yaml:"processes"`
			}
			if err := yaml.Unmarshal(bpm, &doc); err != nil {
				return nil, fmt.Errorf("%s/config/bpm.yml: %w", job.Name, err)
			}
			for _, pr := range doc.Processes {
				if pr.Executable == "" {
					return nil, fmt.Errorf("%s/config/bpm.yml: process %s has no executable", job.Name, pr.Name)
				}
			}
			for _, pr := range doc.Processes {
				pr.job = job.Name
				procs = append(procs, pr)
			}
		} else if m, ok := out.files["jobs/"+job.Name+"/monit"]; ok {
			checks = append(checks, parseMonit(string(m))...)
		}
	}
	if len(procs) == 0 && len(checks) == 0 && g.Lifecycle != "errand" {
		return nil, fmt.Errorf("instance group %s: no job has a process (config/bpm.yml or a monit check process)", g.Name)
	}
	out.run = runScript(jobNames, procs, checks)
	h := sha256.New()
	names := make([]string, 0, len(out.files))
	for n := range out.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00%s", n, len(out.files[n]), out.files[n])
	}
	fmt.Fprintf(h, "run\x00%s\x00pkgs\x00%s", out.run, pkgKey)
	out.hash = hex.EncodeToString(h.Sum(nil))[:16]
	return out, nil
}

// links resolves the links a job consumes: the group whose job provides
// a link of that name (or the consumes' from:) or type.
func (p *plan) links(job *Job, ref JobRef, all []*Instance, jobDir func(string) string) map[string]erb.Link {
	out := map[string]erb.Link{}
	for _, c := range job.Consumes {
		from, explicit := c.Name, false
		if m, ok := ref.Consumes[c.Name].(map[string]any); ok {
			if f, ok := m["from"].(string); ok {
				from, explicit = f, true
			}
		}
		// By name first; without from:, a provider of the same type.
		for _, byType := range []bool{false, true} {
			if _, found := out[c.Name]; found || byType && (explicit || c.Type == "") {
				break
			}
			for gi := range p.man.InstanceGroups {
				g := &p.man.InstanceGroups[gi]
				for ji, pref := range g.Jobs {
					pj := p.jobs[g.Name][ji]
					for _, prov := range pj.Provides {
						name := prov.Name
						if m, ok := pref.Provides[prov.Name].(map[string]any); ok {
							if as, ok := m["as"].(string); ok {
								name = as
							}
						}
						if byType && prov.Type != c.Type || !byType && name != from {
							continue
						}
						if _, found := out[c.Name]; found {
							continue // the first provider wins
						}
						out[c.Name] = p.link(g, pj, pref, prov, all)
					}
				}
			}
		}
	}
	return out
}

// link is what a consumer sees of a provider: its group's instances and
// the properties the provider shares.
func (p *plan) link(g *InstanceGroup, pj *Job, pref JobRef, prov LinkDef, all []*Instance) erb.Link {
	l := erb.Link{Properties: map[string]any{}}
	props := jobProps(pj, pref, g, p.man)
	for _, pn := range prov.Properties {
		if v, ok := lookupDotted(props, pn); ok {
			setDotted(l.Properties, pn, v)
		}
	}
	for _, in := range all {
		if in.Group == g.Name && in.Index < g.Instances {
			l.Instances = append(l.Instances, map[string]any{"address": in.IP, "index": int64(in.Index),
				"id": in.ID, "name": in.Group, "az": azOf(g, in.Index), "bootstrap": in.Index == 0})
		}
	}
	if len(l.Instances) > 0 {
		l.Address = l.Instances[0]["address"].(string)
	}
	return l
}

// azOf is an instance's AZ: the group's AZs taken in turn by index, as
// BOSH spreads instances over them; z1 for a group that names none.
func azOf(g *InstanceGroup, index int) string {
	if len(g.AZs) == 0 {
		return "z1"
	}
	return g.AZs[index%len(g.AZs)]
}

var (
	monitCheckRE = regexp.MustCompile(`(?m)^\s*check process\s+(\S+)`)
	monitPidRE   = regexp.MustCompile(`with pidfile\s+(\S+)`)
	monitStartRE = regexp.MustCompile(`start program\s+"([^"]*)"`)
)

// parseMonit reads a monit file's check process blocks.
func parseMonit(src string) []monitCheck {
	var out []monitCheck
	idx := monitCheckRE.FindAllStringSubmatchIndex(src, -1)
	for i, m := range idx {
		end := len(src)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		block := src[m[0]:end]
		c := monitCheck{name: src[m[2]:m[3]]}
		if x := monitPidRE.FindStringSubmatch(block); x != nil {
			c.pidfile = x[1]
		}
		if x := monitStartRE.FindStringSubmatch(block); x != nil {
			c.start = x[1]
		}
		if c.start != "" {
			out = append(out, c)
		}
	}
	return out
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runScript is the instance's first process: BOSH's agent and bpm in a
// few lines of sh. It makes each job's sys directories, runs its
// bin/pre-start, then its processes: one is exec'd (its end is the
// container's), several run side by side until the last ends.
func runScript(jobs []string, procs []process, checks []monitCheck) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# written by cairn's deploy engine: the instance's processes (bpm.yml or monit)\nset -e\n")
	for _, j := range jobs {
		fmt.Fprintf(&b, "mkdir -p /var/vcap/sys/log/%[1]s /var/vcap/sys/run/%[1]s /var/vcap/data/%[1]s\n", j)
		fmt.Fprintf(&b, "if [ -f /var/vcap/jobs/%[1]s/bin/pre-start ]; then sh /var/vcap/jobs/%[1]s/bin/pre-start; fi\n", j)
	}
	cmd := func(p process) string {
		var c strings.Builder
		keys := make([]string, 0, len(p.Env))
		for k := range p.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		c.WriteString("env")
		for _, k := range keys {
			c.WriteString(" " + shq(k+"="+p.Env[k]))
		}
		c.WriteString(" " + shq(p.Executable))
		for _, a := range p.Args {
			c.WriteString(" " + shq(a))
		}
		return c.String()
	}
	// Each process runs in the background with its pid in
	// /var/vcap/sys/run/JOB/NAME.pid, watched by a subshell that, when it
	// ends, signals the script: the script (the container's first
	// process) then exits, and with it every process of the container —
	// any process ending is the instance failing, which the health
	// monitor sees. SIGTERM (a stop) ends it the same way.
	// pre-start failing fails the instance (set -e); from here a process's
	// exit status is the watcher's to report, not a reason to stop early.
	for _, p := range procs {
		if p.Hooks.PreStart != "" {
			fmt.Fprintf(&b, "sh %s\n", shq(p.Hooks.PreStart))
		}
	}
	b.WriteString("set +e\ntrap 'exit 143' TERM INT\n")
	for _, p := range procs {
		name := p.Name
		if name == "" {
			name = p.job
		}
		fmt.Fprintf(&b, "(%s & echo $! > /var/vcap/sys/run/%s/%s.pid; wait $!; echo \"cairn: process %s/%s exited $?\" >&2; kill -TERM $$) &\n",
			cmd(p), p.job, name, p.job, name)
	}
	for _, c := range checks {
		fmt.Fprintf(&b, "sh -c %s\n", shq(c.start))
		if c.pidfile != "" {
			fmt.Fprintf(&b, "(while kill -0 \"$(cat %[1]s 2>/dev/null)\" 2>/dev/null; do sleep 1; done; echo \"cairn: process %[2]s exited\" >&2; kill -TERM $$) &\n", shq(c.pidfile), c.name)
		}
	}
	b.WriteString("wait\n")
	return b.String()
}
