package deploy

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestCores runs testdata/*: manifest parses a manifest, release a
// release given as "-- path --" sections, diff two texts split by
// "====", run the sh script of bpm processes.
func TestCores(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "manifest":
				m, err := parseManifest("m.yml", []byte(d.Input))
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				var b strings.Builder
				fmt.Fprintf(&b, "name %s\n", m.Name)
				for _, s := range m.Stemcells {
					fmt.Fprintf(&b, "stemcell %s=%s/%s\n", s.Alias, s.Name, s.Version)
				}
				if m.cloud != nil {
					for _, v := range m.cloud.VMTypes {
						mem, cpu := m.cloud.limits(v.Name)
						fmt.Fprintf(&b, "vm_type %s memory=%d nano_cpus=%d\n", v.Name, mem, cpu)
					}
				}
				for _, g := range m.InstanceGroups {
					u := g.update(m.Update)
					mif, _ := u.maxInFlight(g.Instances)
					cw, _ := u.watch(true)
					uw, _ := u.watch(false)
					fmt.Fprintf(&b, "group %s instances=%d canaries=%d max_in_flight=%d canary_watch=%v-%v update_watch=%v-%v\n",
						g.Name, g.Instances, u.canaries(), mif, cw.min, cw.max, uw.min, uw.max)
					for _, j := range g.Jobs {
						fmt.Fprintf(&b, "  job %s/%s properties=%v\n", j.Release, j.Name, j.Properties)
					}
				}
				return b.String()
			case "release":
				p, err := parseRelease(sections(d.Input))
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				var b strings.Builder
				fmt.Fprintf(&b, "release %s/%s\n", p.rel.Name, p.rel.Version)
				for _, n := range names(p.rel.Jobs) {
					j := p.rel.Jobs[n]
					fmt.Fprintf(&b, "job %s packages=%v properties=%v monit=%t files=%v\n", n, j.Packages, names(j.Properties), j.Monit, names(p.jobFiles[j.Fingerprint]))
				}
				for _, n := range names(p.rel.Packages) {
					pk := p.rel.Packages[n]
					fmt.Fprintf(&b, "package %s deps=%v files=%v\n", n, pk.Dependencies, names(p.pkgFiles[pk.Fingerprint]))
				}
				return b.String()
			case "diff":
				a, bb, _ := strings.Cut(d.Input, "====\n")
				return strings.Join(lineDiff(a, bb), "\n") + "\n"
			case "monit":
				var b strings.Builder
				for _, c := range parseMonit(d.Input) {
					fmt.Fprintf(&b, "%s pidfile=%s start=%s\n", c.name, c.pidfile, c.start)
				}
				return b.String()
			case "run":
				var procs []process
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					pr := process{Name: f[0], Executable: f[1], Args: f[2:], job: "web"}
					if hook, ok := strings.CutPrefix(pr.Executable, "hook="); ok {
						pr.Hooks.PreStart, pr.Executable, pr.Args = hook, f[2], f[3:]
					}
					procs = append(procs, pr)
				}
				return runScript([]string{"web"}, procs, nil)
			}
			t.Fatalf("%s: unknown command %s", d.Pos, d.Cmd)
			return ""
		})
	})
}

// sections reads "-- path --" sections into files.
func sections(s string) files {
	out := files{}
	var name string
	var body []string
	flush := func() {
		if name != "" {
			out[name] = []byte(strings.Join(body, "\n") + "\n")
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --") {
			flush()
			name, body = strings.TrimSuffix(strings.TrimPrefix(line, "-- "), " --"), nil
			continue
		}
		body = append(body, line)
	}
	flush()
	return out
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		glob, name string
		want       bool
	}{
		{"greeting/*.in", "greeting/motd.in", true},
		{"greeting/*.in", "greeting/sub/motd.in", false},
		{"greeting/**/*", "greeting/sub/deep/x.c", true},
		{"greeting/**/*", "other/x.c", false},
	} {
		if got := globMatch(c.glob, c.name); got != c.want {
			t.Errorf("globMatch(%q, %q) = %t", c.glob, c.name, got)
		}
	}
	got := []string{"10", "9", "1.10", "1.9"}
	sort.Slice(got, func(i, j int) bool { return versionLess(got[i], got[j]) })
	if strings.Join(got, " ") != "1.9 1.10 9 10" {
		t.Errorf("versions sort as %v", got)
	}
}
