package integration

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/mountinfo"
)

// buildDaemon starts a daemon that builds images, with busybox:latest
// (FROM scratch with Debian's busybox-static, made by the test) imported.
func buildDaemon(t *testing.T) *daemonProc {
	t.Helper()
	requireRuntime(t, "skopeo", "umoci")
	d, _ := containerDaemon(t, "cairnb", "10.91", nil)
	// What a build cut short by a failed test may leave (the daemon
	// removes it at its next start, but this one will not start again):
	// step containers and rootfs mounts. Registered after the daemon's
	// own cleanup, so it runs first.
	t.Cleanup(func() { buildLeftovers(d) })
	importBusybox(t, d, map[string]string{"etc/doomed": "delete me\n"})
	return d
}

func buildLeftovers(d *daemonProc) {
	root := filepath.Join(d.Data, "build", "runc")
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		exec.Command("runc", "--root", root, "delete", "--force", e.Name()).Run()
	}
	mounts, _ := mountinfo.Self()
	for _, m := range mounts {
		if strings.HasPrefix(m.MountPoint, filepath.Join(d.Data, "build")+"/") {
			exec.Command("umount", "-l", m.MountPoint).Run()
		}
	}
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
	Created string `json:"created"`
	Author  string `json:"author"`
	Config  struct {
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

// digestID is the id (config digest) of an image of d's store.
func digestID(t *testing.T, d *daemonProc, ref string) string {
	t.Helper()
	var img struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal([]byte(cliOK(t, d, "-o", "json", "image", "inspect", ref)), &img); err != nil || img.ID == "" {
		t.Fatalf("image inspect %s: %v", ref, err)
	}
	return img.ID
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
	start := evs[0].Data
	if !strings.HasPrefix(fmt.Sprint(start["context_digest"]), "sha256:") || fmt.Sprint(start["dockerfile_digest"]) != fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(busyboxDockerfile))) {
		t.Errorf("build.start: %v", start)
	}
	tags := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=image.tag"))
	if len(tags) != 4 || tags[0].Data["target"] != "web:1" || tags[0].Data["build"] == "" {
		t.Errorf("image.tag events: %+v", tags)
	}
	// build list and build show answer from the journal after a restart.
	d.Stop()
	d.Restart()
	type listRow struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Image  string `json:"image"`
	}
	list := parseNDJSON[listRow](t, cliOK(t, d, "-o", "json", "build", "list"))
	if len(list) != 4 || list[0].Status != "done" || list[0].Image != digestID(t, d, "web:1") {
		t.Errorf("build list after a restart: %+v", list)
	}
	if show := cliOK(t, d, "build", "show", list[0].ID); !strings.Contains(show, "COPY index.html /www/") || !strings.Contains(show, "sha256:") {
		t.Errorf("build show after a restart:\n%s", show)
	}

	// audit who image/web:1: each version the tag named, and its build.
	who := cliOK(t, d, "-o", "json", "audit", "who", "image/web:1")
	type whoRow struct {
		Kind  string `json:"kind"`
		After string `json:"after"`
	}
	rows := parseNDJSON[whoRow](t, who)
	if len(rows) != 2 || !strings.Contains(rows[0].After, `"build"`) || !strings.Contains(rows[0].After, digestID(t, d, "web:1")) {
		t.Errorf("audit who image/web:1:\n%s", who)
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
	out, _ := build(t, d, child, "tag=onchild")
	if !strings.Contains(out, "STEP 1/4: FROM onbase\nSTEP 2/4: COPY trigger.txt /from-trigger\n") {
		t.Errorf("the triggers are not steps 2 and 3 of 4:\n%s", out)
	}
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
LABEL stage=final extra=$NOPE
`,
		"keep.txt":      "kept\n",
		"secret.txt":    "must not be copied\n",
		"logs/a.log":    "ignored\n",
		".dockerignore": "secret.txt\nlogs\n",
	})
	// The broken stage is not needed by the final one, so it never runs.
	out, _ = build(t, d, dir, "tag=multi", "build-arg.VERSION=2", "build-arg.UNUSED=x", "build-arg.DB_PASSWORD=hunter2")
	if strings.Contains(out, "exit 7") {
		t.Errorf("an unneeded stage was built:\n%s", out)
	}
	if !strings.Contains(out, "[Warning] UndefinedVar: Usage of undefined variable '$NOPE' (Dockerfile:18)") {
		t.Errorf("no warning for an undefined variable:\n%s", out)
	}
	if !strings.Contains(out, "[Warning] One or more build-args [DB_PASSWORD UNUSED] were not consumed") {
		t.Errorf("no warning for an unused build arg:\n%s", out)
	}
	// A build arg whose name says secret is not recorded.
	if starts := cliOK(t, d, "-o", "json", "events", "kind=build.start"); strings.Contains(starts, "hunter2") || !strings.Contains(starts, `"DB_PASSWORD":"<redacted>"`) {
		t.Errorf("build.start records a password build arg:\n%s", starts)
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

// startSleepingBuild starts `build DIR tag=never` of a Dockerfile whose
// RUN step prints "started" and sleeps, and returns once the step has
// started: the context directory, the client's command (its output read
// up to "started" by sc) and the build's id.
func startSleepingBuild(t *testing.T, d *daemonProc) (dir string, cmd *exec.Cmd, sc *bufio.Scanner, id string) {
	t.Helper()
	dir = writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 600\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd = cliCommand(ctx, d, "build", dir, "tag=never")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc = bufio.NewScanner(stdout)
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
	return dir, cmd, sc, id
}

func TestBuildCancel(t *testing.T) {
	d := buildDaemon(t)
	_, cmd, sc, id := startSleepingBuild(t, d)
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
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/cairn-build/build-" + id + "-*"); len(left) > 0 {
		t.Errorf("the canceled step's cgroup is left: %v", left)
	}
	if list := cliOK(t, d, "build", "list"); !strings.Contains(list, id) || !strings.Contains(list, "canceled") {
		t.Errorf("build list: %s", list)
	}
	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=build.fail"))
	if len(evs) != 1 || evs[0].Data["error"] != "canceled" {
		t.Errorf("build.fail of the canceled build: %+v", evs)
	}
}

// TestBuildSurvivesKill: the daemon SIGKILLed while a RUN step runs. The
// next daemon kills the step's container and removes its mounts and work
// directory; the build is listed as interrupted and tagged nothing; a new
// build of the same Dockerfile runs to the end.
func TestBuildSurvivesKill(t *testing.T) {
	d := buildDaemon(t)
	dir, cmd, sc, id := startSleepingBuild(t, d)
	d.Kill()
	for sc.Scan() {
	}
	cmd.Wait()
	d.start()
	buildRoot := filepath.Join(d.Data, "build", "runc")
	if out, err := exec.Command("runc", "--root", buildRoot, "list", "-q").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runc list of the build's root after the restart: %v %q", err, out)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(d.Data, "build", "work")) {
		t.Errorf("a build mount is left after the restart:\n%s", mi)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Data, "build", "work")); len(ents) > 0 {
		t.Errorf("the interrupted build's work directory is left: %v", ents)
	}
	if _, _, code := cli(t, d, "image", "inspect", "never"); code == 0 {
		t.Error("the interrupted build tagged its image")
	}
	if list := cliOK(t, d, "build", "list"); !strings.Contains(list, id) || !strings.Contains(list, "interrupted") {
		t.Errorf("build list after the restart: %s", list)
	}
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo again\n"})
	cliOK(t, d, "build", dir, "tag=after")
	cliOK(t, d, "image", "inspect", "after")
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

// packerJSON is the seed's Packer sample: its two cloud builders (which
// cannot run here) and two docker builders added, whose shell-local
// provisioners wait for each other — they finish only if the builds run
// in parallel, as Packer runs them.
const packerJSON = `{
  "variables": {"version": "1.0", "aws_region": "us-east-1", "api_token": "t0ps3cret"},
  "builders": [
    {"type": "amazon-ebs", "region": "{{user ` + "`aws_region`" + `}}", "source_ami": "ami-0abc", "instance_type": "t2.micro", "ssh_username": "ubuntu", "ami_name": "web {{timestamp}}"},
    {"type": "googlecompute", "project_id": "web", "source_image": "debian-12", "zone": "us-central1-a"},
    {"type": "docker", "name": "a", "image": "busybox", "commit": true, "export_path": "a-{{user ` + "`version`" + `}}.tar",
     "changes": ["CMD [\"cat\", \"/etc/motd\"]", "EXPOSE 80", "LABEL version={{user ` + "`version`" + `}}"]},
    {"type": "docker", "name": "b", "image": "busybox", "commit": true, "export_path": "b.tar", "run_command": ["-d", "-i", "-t", "{{.Image}}", "/bin/sh"]}
  ],
  "provisioners": [
    {"type": "file", "source": "motd", "destination": "/etc/motd"},
    {"type": "shell", "inline": ["echo \"$GREETING\" > /greeting", "echo provisioned"], "environment_vars": ["GREETING=hello there"]},
    {"type": "shell-local", "inline": ["touch $PACKER_BUILD_NAME.ready", "i=0; while [ ! -e a.ready ] || [ ! -e b.ready ]; do i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.1; done"], "only": ["a", "b"]},
    {"type": "shell", "inline": ["exit 1"], "only": ["amazon-ebs"]},
    {"type": "file", "direction": "download", "source": "/greeting", "destination": "downloaded.txt", "only": ["a"]}
  ],
  "post-processors": [
    [{"type": "docker-tag", "repository": "web", "tags": ["{{user ` + "`version`" + `}}"], "only": ["a"]}],
    {"type": "manifest", "output": "packer-manifest.json"},
    {"type": "checksum", "checksum_types": ["sha256"], "output": "{{.BuildName}}.{{.ChecksumType}}"},
    [{"type": "compress", "output": "{{.BuildName}}.tar.gz", "only": ["a"]}, {"type": "shell-local", "inline": ["tar tzf a.tar.gz > compressed.txt"], "only": ["a"]}]
  ]
}`

// packerHCL is the same build for builder a in HCL2.
const packerHCL = `variable "version" {
  type    = string
  default = "1.0"
}

locals {
  greeting = "hello there"
}

source "docker" "a" {
  image       = "busybox"
  commit      = true
  export_path = "hcl-${var.version}.tar"
  changes     = ["CMD [\"cat\", \"/etc/motd\"]", "EXPOSE 80", "LABEL version=${var.version}"]
}

source "amazon-ebs" "web" {
  region = "us-east-1"
}

build {
  sources = ["source.docker.a", "source.amazon-ebs.web"]

  provisioner "file" {
    source      = "motd"
    destination = "/etc/motd"
  }
  provisioner "shell" {
    inline           = ["echo \"$GREETING\" > /greeting", "echo provisioned"]
    environment_vars = ["GREETING=${local.greeting}"]
  }
  post-processors {
    post-processor "docker-tag" {
      repository = "webhcl"
      tags       = [var.version]
    }
  }
  post-processor "manifest" {
    output = "hcl-manifest.json"
  }
  post-processor "checksum" {
    checksum_types = ["sha256"]
    output         = "hcl.{{.ChecksumType}}"
  }
}
`

func TestBuildPacker(t *testing.T) {
	d := buildDaemon(t)
	dir := writeContext(t, map[string]string{"web.json": packerJSON, "web.pkr.hcl": packerHCL, "motd": "hello from packer\n"})
	tmpl := filepath.Join(dir, "web.json")

	// The cloud builders cannot run here: validation names them and the
	// types that can; except= leaves them out.
	_, stderr, code := cli(t, d, "build", "packer", "validate", tmpl)
	if code != 2 || !strings.Contains(stderr, `builder "amazon-ebs" has type amazon-ebs, which cannot run here`) || !strings.Contains(stderr, "the types available: docker, oci") {
		t.Errorf("validate without except: exit %d\n%s", code, stderr)
	}
	if out := cliOK(t, d, "build", "packer", "validate", tmpl, "except=amazon-ebs,googlecompute"); !strings.Contains(out, "The configuration is valid.") {
		t.Errorf("validate with except: %s", out)
	}

	// Packer writes relative outputs (export_path, manifest, checksum)
	// in its working directory: the CLI's, here the template's.
	insp := cliOK(t, d, "build", "packer", "inspect", tmpl)
	for _, want := range []string{"Packer Inspect: JSON mode", `  api_token = "<redacted>"`, "  amazon-ebs (amazon-ebs) (cannot run here: leave it out with except=)", "  a (docker)",
		"    provisioner shell-local only=a,b", "    post-processors compress only=a -> shell-local only=a"} {
		if !strings.Contains(insp, want+"\n") {
			t.Errorf("packer inspect lacks %q:\n%s", want, insp)
		}
	}
	out := cliInDir(t, d, dir, "build", "packer", "web.json", "except=amazon-ebs,googlecompute")
	for _, want := range []string{"==> b: warning: run_command is ignored here", "==> a: Uploading motd => /etc/motd", "    a: provisioned", "    b: provisioned", "==> a: Tagged sha256:", "==> Builds finished."} {
		if !strings.Contains(out, want) {
			t.Errorf("packer build output lacks %q:\n%s", want, out)
		}
	}
	if got := cliOK(t, d, "run", "web:1.0", "rm", "network=none"); got != "hello from packer\n" {
		t.Errorf("run web:1.0 (CMD from changes) printed %q", got)
	}
	if got := runIn(t, d, "web:1.0", "cat", "/greeting"); got != "hello there\n" {
		t.Errorf("environment_vars: /greeting = %q", got)
	}
	c := skopeoConfig(t, d, "web:1.0")
	if _, ok := c.Config.ExposedPorts["80/tcp"]; !ok || c.Config.Labels["version"] != "1.0" {
		t.Errorf("changes gave config %+v", c.Config)
	}

	// manifest: both builds, with the exported file; checksum: the
	// export's sha256.
	var mf struct {
		Builds []struct {
			Name        string `json:"name"`
			BuilderType string `json:"builder_type"`
			ArtifactID  string `json:"artifact_id"`
			Files       []struct {
				Name string `json:"name"`
				Size int64  `json:"size"`
			} `json:"files"`
		} `json:"builds"`
		LastRunUUID string `json:"last_run_uuid"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "packer-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &mf); err != nil || len(mf.Builds) != 2 || mf.LastRunUUID == "" {
		t.Fatalf("packer-manifest.json: %v\n%s", err, raw)
	}
	for _, b := range mf.Builds {
		if b.BuilderType != "docker" || !strings.HasPrefix(b.ArtifactID, "sha256:") || len(b.Files) != 1 || b.Files[0].Size == 0 {
			t.Errorf("manifest build %+v", b)
		}
	}
	sum := sha256File(t, filepath.Join(dir, "a-1.0.tar"))
	if got, _ := os.ReadFile(filepath.Join(dir, "a.sha256")); string(got) != sum+"\ta-1.0.tar\n" {
		t.Errorf("a.sha256 = %q, want %q", got, sum+"\ta-1.0.tar\n")
	}

	// file download, and a chain: compress, then shell-local on its file.
	if got, _ := os.ReadFile(filepath.Join(dir, "downloaded.txt")); string(got) != "hello there\n" {
		t.Errorf("file download wrote %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "compressed.txt")); string(got) != "a-1.0.tar\n" {
		t.Errorf("compress then shell-local: the tar.gz lists %q", got)
	}

	// The HCL2 template builds the same image content.
	out = cliInDir(t, d, dir, "build", "packer", "web.pkr.hcl", "only=docker.a")
	if !strings.Contains(out, "==> docker.a: Tagged") {
		t.Errorf("HCL2 build output:\n%s", out)
	}
	if hcl := sha256File(t, filepath.Join(dir, "hcl-1.0.tar")); hcl != sum {
		t.Errorf("the HCL2 build's file system (sha256 %s) differs from the JSON one's (%s)", hcl, sum)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "hcl.sha256")); string(got) != sum+"\thcl-1.0.tar\n" {
		t.Errorf("hcl.sha256 = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "hcl-manifest.json")); err != nil {
		t.Errorf("the HCL2 manifest: %v", err)
	}
	if got := cliOK(t, d, "run", "webhcl:1.0", "rm", "network=none"); got != "hello from packer\n" {
		t.Errorf("run webhcl:1.0 printed %q", got)
	}
	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=build.done"))
	if len(evs) != 3 {
		t.Errorf("%d build.done events, want 3 (a, b, docker.a)", len(evs))
	}
	starts := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=build.start"))
	if len(starts) != 3 || !strings.HasPrefix(fmt.Sprint(starts[0].Data["template_digest"]), "sha256:") {
		t.Fatalf("build.start events: %+v", starts)
	}
	if vars, _ := starts[0].Data["variables"].(map[string]any); vars["api_token"] != "<redacted>" || vars["version"] != "1.0" {
		t.Errorf("build.start variables: %v", starts[0].Data["variables"])
	}
	if raw, _ := json.Marshal(starts); strings.Contains(string(raw), "t0ps3cret") {
		t.Error("a secret variable's value is in the journal")
	}
}

// cliInDir runs the CLI in dir and requires exit code 0.
func cliInDir(t *testing.T, d *daemonProc, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := cliCommand(ctx, d, args...)
	cmd.Dir = dir
	r := runCLI(t, cmd)
	if r.Code != 0 {
		t.Fatalf("cairn %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(raw))
}

func TestBuildFromLayoutAndNetwork(t *testing.T) {
	d := buildDaemon(t)
	lay := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("skopeo", "copy", "oci:"+filepath.Join(d.Data, "images")+":busybox:latest", "oci:"+lay+":bb").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM oci-layout://" + lay + ":bb\nRUN ls /sys/class/net > /nets\n"})
	build(t, d, dir, "tag=netnone")
	// RUN steps have no network by default: their own namespace, lo only.
	if got := runIn(t, d, "netnone", "cat", "/nets"); got != "lo\n" {
		t.Errorf("RUN's network by default: %q, want lo only", got)
	}
	// network=host: the host's interfaces.
	build(t, d, dir, "tag=nethost", "network=host", "no-cache")
	got := runIn(t, d, "nethost", "cat", "/nets")
	if !strings.Contains(got, "lo\n") || len(strings.Fields(got)) < 2 {
		t.Errorf("network=host: RUN saw %q", got)
	}
	// FROM NAME@DIGEST: the image whose manifest has that digest.
	raw, err := exec.Command("skopeo", "inspect", "oci:"+filepath.Join(d.Data, "images")+":busybox:latest").Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var si struct{ Digest string }
	json.Unmarshal(raw, &si)
	pinned := writeContext(t, map[string]string{"Dockerfile": "FROM busybox@" + si.Digest + "\nRUN echo pinned > /p\n"})
	build(t, d, pinned, "tag=pinned")
	if c := skopeoConfig(t, d, "pinned:latest"); c.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("created = %s, want the Unix epoch", c.Created)
	}
	// SOURCE_DATE_EPOCH sets the times, as with BuildKit.
	build(t, d, pinned, "tag=pinned:epoch", "build-arg.SOURCE_DATE_EPOCH=1700000000")
	if c := skopeoConfig(t, d, "pinned:epoch"); c.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: created = %s", c.Created)
	}
	if got := runIn(t, d, "pinned", "cat", "/p"); got != "pinned\n" {
		t.Errorf("FROM busybox@%s: /p = %q", si.Digest, got)
	}

	_, stderr, code := cli(t, d, "build", dir, "network=bridge")
	if code != 2 || !strings.Contains(stderr, "network=bridge: RUN steps' network is none or host") {
		t.Errorf("network=bridge: exit %d %s", code, stderr)
	}
}

// TestBuildContextReadAsCaller: a caller granted build reads its context
// with its own permissions: a Dockerfile or a context file it cannot
// read is refused, a readable context builds.
func TestBuildContextReadAsCaller(t *testing.T) {
	requireRootForUsers(t)
	requireRuntime(t)
	policy := filepath.Join(t.TempDir(), "policy.cel")
	os.WriteFile(policy, []byte(`allow actor.uid == 65534 && verb.startsWith("build")`+"\n"), 0o644)
	n := 20 + int(time.Now().UnixNano()%200)
	d := startGroupDaemon(t, withFlags("--policy", policy, "--runtime-bridge", fmt.Sprintf("cairnu%d", n), "--runtime-subnet", fmt.Sprintf("10.93.%d.0/24", n)))
	importBusybox(t, d, nil)
	mkctx := func(files map[string]string) string {
		dir, err := os.MkdirTemp("", "cairn-buildctx-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		for name, content := range files {
			os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
		}
		return dir
	}
	ok := mkctx(map[string]string{"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", "a.txt": "a\n"})
	if out, errOut, code := userCLI(t, d, "build", ok, "tag=mine"); code != 0 {
		t.Fatalf("a readable context as uid %d: exit %d\n%s%s", testUID, code, out, errOut)
	}

	secret := mkctx(map[string]string{"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", "shadow": "root:$6$secret\n"})
	os.Chmod(filepath.Join(secret, "shadow"), 0o600)
	out, errOut, code := userCLI(t, d, "build", secret, "tag=stolen")
	if code == 0 || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "it is read as you") {
		t.Errorf("a context with a 0600 root file as uid %d: exit %d\n%s%s", testUID, code, out, errOut)
	}
	hidden := mkctx(map[string]string{"Dockerfile": "FROM busybox\n"})
	os.Chmod(filepath.Join(hidden, "Dockerfile"), 0o600)
	if _, errOut, code := userCLI(t, d, "build", hidden); code != 2 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("an unreadable Dockerfile as uid %d: exit %d %s", testUID, code, errOut)
	}
	if _, _, code := cli(t, d, "image", "inspect", "stolen"); code == 0 {
		t.Error("the refused build tagged its image")
	}
}
