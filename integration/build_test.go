package integration

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// buildDaemon starts a daemon that builds images, with busybox:latest
// (FROM scratch with Debian's busybox-static, made by the test) imported.
func buildDaemon(t *testing.T) *daemonProc {
	t.Helper()
	requireRuntime(t, "skopeo", "umoci")
	d, _ := containerDaemon(t, "cairnb", "10.91", nil)
	importBusybox(t, d, map[string]string{"etc/doomed": "delete me\n"})
	return d
}

// writeContext writes files (path → content; a value starting with
// "->" makes a symlink) under a new directory and returns it.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var imageLine = regexp.MustCompile(`(?m)^image (sha256:[0-9a-f]{64}) digest (sha256:[0-9a-f]{64})$`)

// build runs `build DIR ARGS…`, requires success and answers its output
// and the image digest it printed.
func build(t *testing.T, d *daemonProc, dir string, args ...string) (out, digest string) {
	t.Helper()
	out = cliOK(t, d, append([]string{"build", dir}, args...)...)
	m := imageLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("build printed no image line:\n%s", out)
	}
	return out, m[2]
}

// runIn runs cmd in image and answers its output.
func runIn(t *testing.T, d *daemonProc, image string, cmd ...string) string {
	t.Helper()
	return cliOK(t, d, append([]string{"run", image, "rm", "network=none", "--"}, cmd...)...)
}

// imageConfig is what skopeo inspect --config says of an image of the
// store's OCI layout.
type imageConfig struct {
	Author string `json:"author"`
	Config struct {
		Cmd          []string            `json:"Cmd"`
		Entrypoint   []string            `json:"Entrypoint"`
		Env          []string            `json:"Env"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
		WorkingDir   string              `json:"WorkingDir"`
		OnBuild      []string            `json:"OnBuild"`
		User         string              `json:"User"`
	} `json:"config"`
}

func skopeoConfig(t *testing.T, d *daemonProc, name string) imageConfig {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--config", "--raw", "oci:"+filepath.Join(d.Data, "images")+":"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", name, err, out)
	}
	var c imageConfig
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", name, err, out)
	}
	return c
}

// steps reads the STEP lines of a build's output, each with whether
// CACHED followed it.
func steps(out string) (names []string, cached []bool) {
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "STEP "):
			_, instr, _ := strings.Cut(l, ": ")
			names = append(names, instr)
			cached = append(cached, false)
		case l == "--> CACHED" && len(cached) > 0:
			cached[len(cached)-1] = true
		}
	}
	return names, cached
}

// busyboxDockerfile is the seed's nginx-style Dockerfile, rewritten for
// busybox.
const busyboxDockerfile = `FROM busybox
MAINTAINER cairn tests <tests@example.com>
RUN mkdir -p /www && echo "built by RUN" > /www/built && rm /etc/doomed
COPY index.html /www/
EXPOSE 80
CMD ["cat", "/www/index.html", "/www/built"]
`

func TestBuildBusybox(t *testing.T) {
	d := buildDaemon(t)
	dir := writeContext(t, map[string]string{"Dockerfile": busyboxDockerfile, "index.html": "<h1>hello from cairn</h1>\n"})
	out, digest := build(t, d, dir, "tag=web:1")
	names, _ := steps(out)
	if len(names) != 6 || !strings.HasPrefix(out, "build ") || !strings.Contains(out, "STEP 3/6: RUN mkdir -p /www") || !strings.Contains(out, "--> layer sha256:") {
		t.Fatalf("build output is not docker build's:\n%s", out)
	}

	// The config, as skopeo reads it from the store's OCI layout.
	c := skopeoConfig(t, d, "web:1")
	if strings.Join(c.Config.Cmd, " ") != "cat /www/index.html /www/built" {
		t.Errorf("Cmd = %q", c.Config.Cmd)
	}
	if _, ok := c.Config.ExposedPorts["80/tcp"]; !ok || len(c.Config.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts = %v, want 80/tcp", c.Config.ExposedPorts)
	}
	if c.Config.Labels["maintainer"] != "cairn tests <tests@example.com>" || c.Author != "cairn tests <tests@example.com>" {
		t.Errorf("MAINTAINER gave labels %v, author %q", c.Config.Labels, c.Author)
	}

	// umoci unpacks it (from a copy of the layout) and runc runs what CMD
	// says; the file the RUN deleted is gone (a whiteout).
	layout := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("cp", "-a", filepath.Join(d.Data, "images"), layout).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", layout+":web:1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "etc", "doomed")); !os.IsNotExist(err) {
		t.Errorf("/etc/doomed, deleted by RUN, is in the unpacked image (%v)", err)
	}
	var spec map[string]any
	raw, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	spec["process"].(map[string]any)["terminal"] = false
	raw, _ = json.Marshal(spec)
	os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600)
	runcRoot := t.TempDir()
	got, err := exec.Command("runc", "--root", runcRoot, "run", "--bundle", bundle, "cairn-build-umoci").CombinedOutput()
	exec.Command("runc", "--root", runcRoot, "delete", "--force", "cairn-build-umoci").Run()
	if err != nil || string(got) != "<h1>hello from cairn</h1>\nbuilt by RUN\n" {
		t.Errorf("runc run of the umoci bundle: %v\n%s", err, got)
	}

	// The runtime engine runs it too.
	if got := cliOK(t, d, "run", "web:1", "rm", "network=none"); got != "<h1>hello from cairn</h1>\nbuilt by RUN\n" {
		t.Errorf("run web:1 printed %q", got)
	}

	// Nothing changed: every step after FROM is CACHED, the same digest.
	out2, digest2 := build(t, d, dir, "tag=web:1")
	names2, cached2 := steps(out2)
	for i := 1; i < len(names2); i++ {
		if !cached2[i] {
			t.Errorf("rebuild: step %d (%s) is not CACHED:\n%s", i+1, names2[i], out2)
		}
	}
	if digest2 != digest {
		t.Errorf("rebuild gave digest %s, first build %s", digest2, digest)
	}

	// One file changed: the steps before its COPY are cached, it and
	// those after it rerun.
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>changed</h1>\n"), 0o644)
	out3, digest3 := build(t, d, dir, "tag=web:2")
	_, cached3 := steps(out3)
	want := []bool{false, true, true, false, false, false}
	for i := range want {
		if i > 0 && cached3[i] != want[i] {
			t.Errorf("after a change: step %d cached=%v, want %v:\n%s", i+1, cached3[i], want[i], out3)
		}
	}
	if digest3 == digest {
		t.Error("a changed file gave the same image digest")
	}

	// A build from nothing (no-cache) reproduces the same image digest.
	_, digest4 := build(t, d, dir, "tag=web:3", "no-cache")
	if digest4 != digest3 {
		t.Errorf("no-cache rebuild of the same inputs gave %s, want %s (layers are not reproducible)", digest4, digest3)
	}

	// The record: build.start, a build.step per step, build.done, image.tag.
	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=build.*"))
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	if kinds["build.start"] != 4 || kinds["build.done"] != 4 || kinds["build.step"] != 4*5 {
		t.Errorf("build events: %v", kinds)
	}
	tags := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=image.tag"))
	if len(tags) != 4 || tags[0].Data["target"] != "web:1" || tags[0].Data["build"] == "" {
		t.Errorf("image.tag events: %+v", tags)
	}
}

func TestBuildMultiStageArgsIgnoreHeredocOnbuild(t *testing.T) {
	d := buildDaemon(t)

	// ONBUILD: stored in the base's config, run in the child, not inherited.
	base := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nONBUILD COPY trigger.txt /from-trigger\nONBUILD RUN echo triggered > /triggered\n"})
	build(t, d, base, "tag=onbase")
	if c := skopeoConfig(t, d, "onbase:latest"); len(c.Config.OnBuild) != 2 || c.Config.OnBuild[1] != "RUN echo triggered > /triggered" {
		t.Errorf("the base's OnBuild = %q", c.Config.OnBuild)
	}
	child := writeContext(t, map[string]string{"Dockerfile": "FROM onbase\nRUN cat /triggered /from-trigger > /both\n", "trigger.txt": "from the child's context\n"})
	build(t, d, child, "tag=onchild")
	if got := runIn(t, d, "onchild", "cat", "/both"); got != "triggered\nfrom the child's context\n" {
		t.Errorf("ONBUILD triggers gave %q", got)
	}
	if c := skopeoConfig(t, d, "onchild:latest"); len(c.Config.OnBuild) != 0 {
		t.Errorf("the child inherited OnBuild %q; Docker does not", c.Config.OnBuild)
	}

	dir := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE=busybox
FROM ${BASE} AS builder
ARG VERSION=1
ENV APP=/app-$VERSION
WORKDIR $APP
RUN <<EOF
echo "version $VERSION" > out
echo "heredoc line two" >> out
EOF
RUN pwd > where

FROM busybox AS broken
RUN exit 7

FROM busybox
COPY --from=builder /app-2/out /app-2/where /result/
COPY . /ctx/
LABEL stage=final
`,
		"keep.txt":      "kept\n",
		"secret.txt":    "must not be copied\n",
		"logs/a.log":    "ignored\n",
		".dockerignore": "secret.txt\nlogs\n",
	})
	// The broken stage is not needed by the final one, so it never runs.
	out, _ := build(t, d, dir, "tag=multi", "build-arg.VERSION=2", "build-arg.UNUSED=x")
	if strings.Contains(out, "exit 7") {
		t.Errorf("an unneeded stage was built:\n%s", out)
	}
	if !strings.Contains(out, "[Warning] One or more build-args [UNUSED] were not consumed") {
		t.Errorf("no warning for an unused build arg:\n%s", out)
	}
	if got := runIn(t, d, "multi", "cat", "/result/out", "/result/where"); got != "version 2\nheredoc line two\n/app-2\n" {
		t.Errorf("COPY --from=builder gave %q", got)
	}
	if got := runIn(t, d, "multi", "ls", "-a", "/ctx"); got != ".\n..\n.dockerignore\nDockerfile\nkeep.txt\n" {
		t.Errorf(".dockerignore: /ctx holds %q", got)
	}

	// target= builds the builder stage only: its config has the expanded
	// ENV and WORKDIR, and no LABEL of the final stage.
	out, _ = build(t, d, dir, "tag=multi-builder", "target=builder", "build-arg.VERSION=3")
	if strings.Contains(out, "LABEL") || strings.Contains(out, "exit 7") {
		t.Errorf("target=builder ran steps after its stage:\n%s", out)
	}
	c := skopeoConfig(t, d, "multi-builder:latest")
	if c.Config.WorkingDir != "/app-3" || !strings.Contains(strings.Join(c.Config.Env, " "), "APP=/app-3") || c.Config.Labels["stage"] != "" {
		t.Errorf("target=builder config: %+v", c.Config)
	}
	if got := runIn(t, d, "multi-builder", "cat", "out"); got != "version 3\nheredoc line two\n" {
		t.Errorf("target=builder's /app-3/out = %q", got)
	}
}

func TestBuildBadInput(t *testing.T) {
	d := buildDaemon(t)
	for _, tc := range []struct {
		name, dockerfile string
		files            map[string]string
		code             int
		want             string
	}{
		{"syntax", "FROM busybox\nRUNN true\n", nil, 2, "Dockerfile:2:1: unknown instruction: RUNN"},
		{"parent", "FROM busybox\nCOPY ../x /x\n", nil, 1, "the path is outside the build context"},
		{"symlink", "FROM busybox\nCOPY link/passwd /x\n", map[string]string{"link": "->/etc"}, 1, "a symlink leads outside the build context: refused"},
		{"url", "FROM busybox\nADD https://example.com/x /x\n", nil, 1, "cairn builds have no network"},
		{"missing", "FROM busybox\nCOPY nosuch /x\n", nil, 1, "nosuch: not found in the build context"},
		{"run", "FROM busybox\nRUN echo the last line >&2; exit 3\n", nil, 1, "the command exited with code 3; its last lines:\n  the last line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"Dockerfile": tc.dockerfile}
			for k, v := range tc.files {
				files[k] = v
			}
			dir := writeContext(t, files)
			_, stderr, code := cli(t, d, "build", dir, "tag=bad-"+tc.name)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.code, tc.want)
			}
			if _, _, code := cli(t, d, "image", "inspect", "bad-"+tc.name); code == 0 {
				t.Errorf("a failed build tagged bad-%s", tc.name)
			}
		})
	}
	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=build.fail"))
	var run *wireEvent
	for i := range evs {
		if evs[i].Data["exit_code"] == float64(3) {
			run = &evs[i]
		}
	}
	if run == nil || run.Data["instruction"] == nil || !strings.Contains(strings.Join(toStrings(run.Data["output"]), "\n"), "the last line") {
		t.Errorf("build.fail of the failing RUN: %+v", evs)
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

func TestBuildCancel(t *testing.T) {
	d := buildDaemon(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 600\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := cliCommand(ctx, d, "build", dir, "tag=never")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var id string
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, "build "); ok && id == "" {
			id, _, _ = strings.Cut(rest, ":")
		}
		if l == "started" {
			break
		}
	}
	if id == "" {
		t.Fatal("the build never said its id and started")
	}
	if out := cliOK(t, d, "build", "cancel", id); !strings.Contains(out, "canceled") {
		t.Errorf("build cancel answered %q", out)
	}
	for sc.Scan() {
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the canceled build's client exited 0")
	}
	if _, _, code := cli(t, d, "image", "inspect", "never"); code == 0 {
		t.Error("a canceled build tagged its image")
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(d.Data, "build")) {
		t.Errorf("a build mount is left:\n%s", mi)
	}
	out, err := exec.Command("runc", "--root", filepath.Join(d.Data, "build", "runc"), "list", "-q").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runc list of the build's root: %v %q", err, out)
	}
	if l := runcList(t, d); l != "" {
		t.Errorf("runc list of the runtime's root: %q", l)
	}
	if list := cliOK(t, d, "build", "list"); !strings.Contains(list, id) || !strings.Contains(list, "canceled") {
		t.Errorf("build list: %s", list)
	}
	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=build.fail"))
	if len(evs) != 1 || evs[0].Data["error"] != "canceled" {
		t.Errorf("build.fail of the canceled build: %+v", evs)
	}
}

// tarGz writes a gzipped tar of files (name → content) to path.
func tarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBuildCopyOptions(t *testing.T) {
	d := buildDaemon(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
ARG NAME=world
RUN echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group
COPY --chown=app:app --chmod=0600 secret.conf /conf/
ADD bundle.tar.gz /opt/
COPY <<EOT /etc/motd
hello $NAME
EOT
RUN --mount=type=cache,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /runs
WORKDIR /srv/made
USER app
RUN id -u > /tmp/uid && pwd > /tmp/pwd
`,
		"secret.conf": "s3cret\n",
	})
	tarGz(t, filepath.Join(dir, "bundle.tar.gz"), map[string]string{"pkg/a.txt": "from the tarball\n"})
	build(t, d, dir, "tag=opts")
	got := runIn(t, d, "opts", "sh", "-c", "ls -ln /conf/secret.conf | cut -c1-10; ls -ln /conf/secret.conf | awk '{print $3, $4}'; cat /opt/pkg/a.txt /etc/motd /tmp/uid /tmp/pwd /runs; ls -d /srv/made; ls /cache | wc -l")
	want := "-rw-------\n1000 1000\nfrom the tarball\nhello world\n1000\n/srv/made\n1\n/srv/made\n0\n"
	if got != want {
		t.Errorf("the image holds:\n%s\nwant:\n%s", got, want)
	}
	if c := skopeoConfig(t, d, "opts:latest"); c.Config.User != "app" || c.Config.WorkingDir != "/srv/made" {
		t.Errorf("config User %q WorkingDir %q", c.Config.User, c.Config.WorkingDir)
	}
	// The cache mount outlives the build: a no-cache rebuild sees the
	// first run's line.
	build(t, d, dir, "tag=opts", "no-cache")
	if got := runIn(t, d, "opts", "cat", "/runs"); got != "2\n" {
		t.Errorf("RUN --mount=type=cache: /runs = %q after two runs, want 2", got)
	}
}
