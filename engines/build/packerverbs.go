package build

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/build/packer"
	"github.com/cairnhq/cairn/internal/ascaller"
)

var (
	argTemplate = dsl.Arg{Name: "TEMPLATE", Required: true, Help: "a JSON template, a *.pkr.hcl file or a directory of them (relative to your working directory)"}
	packerOpts  = []dsl.Option{
		{Name: "except", Meta: "NAMES", Repeatable: true, Help: "run every build but these (comma-separated names or globs)"},
		{Name: "only", Meta: "NAMES", Repeatable: true, Help: "run only these builds (comma-separated names or globs)"},
		{Name: "var-file", Meta: "FILE", Repeatable: true, Help: "variable values: JSON for a JSON template, HCL (*.pkrvars.hcl) for HCL2"},
	}
)

func (m *module) packerVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "build packer",
			Access:  dsl.AccessHost,
			Summary: "run a Packer template's builds (docker and oci builders) into the image store",
			Help: "build packer TEMPLATE runs the template's builds in parallel, as packer build does: the docker and oci\n" +
				"builders start from an image of the store, shell provisioners run in runc containers, file provisioners\n" +
				"copy, post-processors (manifest, checksum, compress, docker-tag, shell-local) follow. A builder type that\n" +
				"cannot run here fails unless only= or except= leaves it out.\n\n" +
				"  build packer ./web.json except=amazon-ebs,googlecompute var.version=1.2\n  build packer ./web.pkr.hcl only=docker.web",
			Args:      []dsl.Arg{argTemplate},
			Options:   packerOpts,
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runPacker},
		{Spec: dsl.Spec{
			Verb:      "build packer inspect",
			Access:    dsl.AccessRead,
			Summary:   "show a Packer template's variables, builders, provisioners and post-processors",
			Args:      []dsl.Arg{argTemplate},
			Options:   packerOpts,
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runPackerInspect},
		{Spec: dsl.Spec{
			Verb:      "build packer validate",
			Access:    dsl.AccessRead,
			Summary:   "check a Packer template without building",
			Args:      []dsl.Arg{argTemplate},
			Options:   packerOpts,
			Bag:       true,
			BagPrefix: "var.",
		}, Run: m.runPackerValidate},
	}
}

// callerEnv is the caller's environment ({{env}}, env()), read from its
// process: the CLI's own.
func callerEnv(pid int) map[string]string {
	env := map[string]string{}
	if pid <= 0 {
		return env
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return env
	}
	for _, kv := range strings.Split(string(raw), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func splitNames(ws []dsl.Word) []string {
	var out []string
	for _, w := range ws {
		for _, n := range strings.Split(w.Text, ",") {
			if n = strings.TrimSpace(n); n != "" {
				out = append(out, n)
			}
		}
	}
	return out
}

// loadTemplate reads the statement's template, as the caller.
func (m *module) loadTemplate(r engines.Request) (*packer.Template, string, error) {
	st := r.Statement()
	path, err := resolvePath(r, st.Args["TEMPLATE"])
	if err != nil {
		return nil, "", err
	}
	cwd := filepath.Dir(path)
	if pid := r.Actor().PID; pid > 0 {
		if c, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
			cwd = c
		}
	}
	in := packer.Inputs{Vars: map[string]string{}, Env: callerEnv(r.Actor().PID), Now: time.Now()}
	for _, b := range st.Bag {
		in.Vars[strings.TrimPrefix(b.Key, "var.")] = b.Value.Text
	}
	for _, w := range st.Options["var-file"] {
		p, err := resolvePath(r, w)
		if err != nil {
			return nil, "", err
		}
		in.VarFiles = append(in.VarFiles, p)
	}
	var t *packer.Template
	err = ascaller.Do(credOf(r.Actor()), func() error {
		if strings.HasSuffix(path, ".json") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			t, err = packer.ParseJSON(path, src, in)
			return err
		}
		var err error
		t, err = packer.ParseHCL(path, in)
		return err
	})
	if err != nil {
		return nil, "", wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	return t, cwd, nil
}

func (m *module) runPackerValidate(ctx context.Context, r engines.Request) error {
	t, _, err := m.loadTemplate(r)
	if err != nil {
		return err
	}
	st := r.Statement()
	for _, w := range t.Warnings {
		_ = r.Line("Warning: " + w)
	}
	if _, err := t.Select(splitNames(st.Options["only"]), splitNames(st.Options["except"])); err != nil {
		return wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	return r.Line("The configuration is valid.")
}

func (m *module) runPackerInspect(ctx context.Context, r engines.Request) error {
	t, _, err := m.loadTemplate(r)
	if err != nil {
		return err
	}
	lines := []string{fmt.Sprintf("Packer Inspect: %s mode", strings.ToUpper(t.Format)), "", "Variables:"}
	vars := t.Redacted()
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		lines = append(lines, fmt.Sprintf("  %s = %q", k, vars[k]))
	}
	lines = append(lines, "", "Builds:")
	for _, b := range t.Builders {
		note := ""
		if !slices.Contains(packer.Runnable, b.Type) {
			note = " (cannot run here: leave it out with except=)"
		}
		lines = append(lines, fmt.Sprintf("  %s (%s)%s", b.Name, b.Type, note))
		for _, p := range b.Provisioners {
			lines = append(lines, "    provisioner "+p.Type+onlyExcept(p.Only, p.Except))
		}
		for _, c := range b.PostProcessors {
			var names []string
			for _, pp := range c {
				names = append(names, pp.Type+onlyExcept(pp.Only, pp.Except))
			}
			lines = append(lines, "    post-processors "+strings.Join(names, " -> "))
		}
	}
	for _, l := range lines {
		if err := r.Line(l); err != nil {
			return err
		}
	}
	return nil
}

func onlyExcept(only, except []string) string {
	s := ""
	if len(only) > 0 {
		s += " only=" + strings.Join(only, ",")
	}
	if len(except) > 0 {
		s += " except=" + strings.Join(except, ",")
	}
	return s
}

func (m *module) runPacker(ctx context.Context, r engines.Request) (err error) {
	defer m.recovered(&err)
	t, cwd, err := m.loadTemplate(r)
	if err != nil {
		return err
	}
	st := r.Statement()
	builds, err := t.Select(splitNames(st.Options["only"]), splitNames(st.Options["except"]))
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	job := &packerJob{m: m, tmpl: t, dir: filepath.Dir(t.Path), cwd: cwd, actor: r.Actor(), cred: credOf(r.Actor()), runUUID: uuid4()}
	if fi, err := os.Stat(t.Path); err == nil && fi.IsDir() {
		job.dir = t.Path
	}
	job.out = func(s string) {
		_ = r.Line(s)
		if f, ok := r.(engines.Flusher); ok {
			_ = f.Flush()
		}
	}
	for _, w := range t.Warnings {
		job.line("Warning: " + w)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.recovered(&errs[i])
			errs[i] = job.runPackerBuild(ctx, b)
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", builds[i].Name, err))
		}
	}
	if len(failed) > 0 {
		return wire.Errorf(wire.FailedPrecondition, "some builds didn't complete successfully: %s", strings.Join(failed, "; "))
	}
	job.line("==> Builds finished.")
	return nil
}

func uuid4() string {
	b := newID() + newID() + newID()[:8]
	return b[:8] + "-" + b[8:12] + "-4" + b[13:16] + "-a" + b[17:20] + "-" + b[20:32]
}
