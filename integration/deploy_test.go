package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// deployDaemon is runtimeDaemon with the deploy engine's health monitor
// checking often: a daemon with its own bridge and subnet, whose
// containers, mounts, bridge and NAT rules go at the end.
func deployDaemon(t *testing.T, flags ...string) *daemonProc {
	t.Helper()
	// The resurrector would bring back what the cleanup removes.
	resurrectionOff := func(d *daemonProc) { cli(t, d, "deploy", "resurrection", "off") }
	d, _ := containerDaemon(t, "cairnd", "10.88", resurrectionOff, flags...)
	return d
}

// writeTree writes files (slash paths) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// webRelease is a BOSH release made by the test: an httpd job with ERB
// templates and a bpm.yml, and a package compiled by a shell script.
var webRelease = map[string]string{
	"release.MF": "name: web\nversion: \"1\"\n",
	"jobs/httpd/spec": `---
name: httpd
templates:
  index.html.erb: htdocs/index.html
  bpm.yml.erb: config/bpm.yml
  pre-start.erb: bin/pre-start
  post-start.sh: bin/post-start
  post-deploy.sh: bin/post-deploy
  drain.sh: bin/drain
packages: [greeting]
properties:
  greeting: {description: what the page says, default: hello}
  port: {description: the port httpd listens on, default: 80}
  use_master: {default: false}
  fail_render: {default: false}
  secret: {default: none}
provides:
- {name: web, type: web, properties: [port]}
consumes:
- {name: master, type: web, optional: true}
`,
	"jobs/httpd/templates/index.html.erb": `<%= p("greeting") %> from <%= spec.name %>/<%= spec.index %> at <%= spec.address %>
secret <%= p("secret") %>
<% if p("use_master") -%>
master <%= link("master").instances[0].address %>:<%= link("master").p("port") %>
<% end -%>
<% if p("fail_render") -%>
<%= p("no.such.property") %>
<% end -%>
`,
	"jobs/httpd/templates/bpm.yml.erb": `processes:
- name: httpd
  executable: /bin/httpd
  args: [-f, -p, "<%= p("port") %>", -h, /var/vcap/data/httpd/www]
- name: sidecar
  executable: /bin/sleep
  args: ["1000000"]
`,
	"jobs/httpd/templates/pre-start.erb": `mkdir -p /var/vcap/data/httpd/www
cat /var/vcap/jobs/httpd/htdocs/index.html /var/vcap/packages/greeting/motd > /var/vcap/data/httpd/www/index.html
echo boot >> /var/vcap/store/boots
`,
	"jobs/smoke/spec": `---
name: smoke
templates:
  run.erb: bin/run
properties:
  expect: {description: what the master's page must say}
consumes:
- {name: master, type: web}
`,
	"jobs/smoke/templates/run.erb": `wget -q -O- http://<%= link("master").instances[0].address %>:<%= link("master").p("port") %>/ | grep "<%= p("expect") %> from"
`,
	"jobs/httpd/templates/post-start.sh":  "echo started >> /var/vcap/store/post-starts\n",
	"jobs/httpd/templates/post-deploy.sh": "echo deployed > /var/vcap/data/httpd/www/post-deploy.html\n",
	"jobs/httpd/templates/drain.sh":       "echo drained >> /var/vcap/store/drains\necho 0\n",
	"packages/greeting/spec":              "name: greeting\nfiles: [greeting/*.in]\n",
	"packages/greeting/packaging":         "busybox tr a-z A-Z < greeting/motd.in > ${BOSH_INSTALL_TARGET}/motd\n",
	"src/greeting/motd.in":                "compiled motd\n",
}

// redisManifest is the seed's redis-style two-group manifest, for the
// httpd job: greeting and the slaves' port are its knobs.
func redisManifest(greeting, slavePort string, slaveFailRender bool) string {
	return fmt.Sprintf(`name: redis
releases:
- {name: web, version: latest}
stemcells:
- {alias: default, os: bosh-busybox, version: latest}
variables:
- {name: page_secret, type: password}
update:
  canaries: 1
  max_in_flight: 10
  canary_watch_time: 500
  update_watch_time: 500
instance_groups:
- name: redis-master
  instances: 1
  azs: [z1]
  jobs:
  - name: httpd
    release: web
    properties: {greeting: %[1]s, secret: ((page_secret))}
    provides: {web: {as: master-web}}
  stemcell: default
  vm_type: default
  persistent_disk: 1024
  networks: [{name: default}]
- name: redis-slave
  instances: 2
  azs: [z1]
  jobs:
  - name: httpd
    release: web
    properties: {greeting: %[1]s, port: %[2]s, use_master: true, fail_render: %[3]t}
    consumes: {master: {from: master-web}}
  stemcell: default
  vm_type: default
  persistent_disk: 1024
  networks: [{name: default}]
- name: smoke
  lifecycle: errand
  instances: 1
  jobs:
  - name: smoke
    release: web
    properties: {expect: %[1]s}
    consumes: {master: {from: master-web}}
  stemcell: default
  vm_type: default
  networks: [{name: default}]
`, greeting, slavePort, slaveFailRender)
}

type deployInstance struct {
	Instance     string `json:"instance"`
	ID           string `json:"id"`
	Container    string `json:"container"`
	IP           string `json:"ip"`
	ProcessState string `json:"process_state"`
}

func deployInstances(t *testing.T, d *daemonProc) map[string]deployInstance {
	t.Helper()
	out := map[string]deployInstance{}
	for _, in := range parseNDJSON[deployInstance](t, cliOK(t, d, "-o", "json", "deploy", "instances", "redis")) {
		out[in.Instance] = in
	}
	return out
}

func curlPage(t *testing.T, ip string) string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "5", "http://"+ip+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", ip, err, out)
	}
	return string(out)
}

type deployEvent struct {
	Seq     int64          `json:"seq"`
	Kind    string         `json:"kind"`
	Subject string         `json:"subject"`
	Data    map[string]any `json:"data"`
}

func deployEvents(t *testing.T, d *daemonProc, where string) []deployEvent {
	t.Helper()
	return parseNDJSON[deployEvent](t, cliOK(t, d, "-o", "json", "events", "where", where))
}

func TestDeployRedisStyle(t *testing.T) {
	requireRuntime(t, "curl")
	d := deployDaemon(t, "--deploy-health-interval", "200ms")
	importBusybox(t, d, nil)
	cliOK(t, d, "stemcell", "upload", "busybox", "name=bosh-busybox", "version=1")

	rel := t.TempDir()
	writeTree(t, rel, webRelease)
	cliOK(t, d, "release", "upload", rel)
	if out := cliOK(t, d, "releases"); !strings.Contains(out, "web") {
		t.Fatalf("releases does not list web:\n%s", out)
	}
	if out := cliOK(t, d, "stemcells"); !strings.Contains(out, "bosh-busybox") {
		t.Fatalf("stemcells does not list bosh-busybox:\n%s", out)
	}

	dir := t.TempDir()
	deployFile := func(m string) cliResult {
		writeTree(t, dir, map[string]string{"redis.yml": m})
		return cliIn(t, d, dir, "deploy", "./redis.yml")
	}

	// From nothing: every instance answers at its address, with its
	// rendered template, the compiled package and the master's link.
	if r := deployFile(redisManifest("hello", "80", false)); r.Code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	ins := deployInstances(t, d)
	if len(ins) != 3 {
		t.Fatalf("want 3 instances, got %v", ins)
	}
	master := ins["redis-master/0"]
	for name, in := range ins {
		page := curlPage(t, in.IP)
		group, idx, _ := strings.Cut(name, "/")
		want := fmt.Sprintf("hello from %s/%s at %s", group, idx, in.IP)
		if !strings.Contains(page, want) || !strings.Contains(page, "COMPILED MOTD") {
			t.Errorf("%s answers %q, want %q and the compiled package", name, page, want)
		}
		if group == "redis-slave" && !strings.Contains(page, "master "+master.IP+":80") {
			t.Errorf("%s answers %q, want the master's link %s:80", name, page, master.IP)
		}
	}
	// The generated password is in the master's page, and nowhere in
	// the journal.
	secretRE := regexp.MustCompile(`secret ([A-Za-z0-9]{20})\n`)
	sm := secretRE.FindStringSubmatch(curlPage(t, master.IP))
	if sm == nil {
		t.Fatalf("the master's page has no generated secret: %q", curlPage(t, master.IP))
	}
	if all := cliOK(t, d, "-o", "json", "events", "limit=100000"); strings.Contains(all, sm[1]) {
		t.Errorf("the generated password is in the journal")
	}
	if n := len(deployEvents(t, d, `kind == "deploy.variables"`)); n != 1 {
		t.Errorf("deploy.variables events: %d", n)
	}
	if n := len(deployEvents(t, d, `kind == "deploy.compile"`)); n != 1 {
		t.Errorf("the package compiled %d times, want once", n)
	}

	// A property change rolls canaries first, group by group.
	if r := deployFile(redisManifest("hi", "80", false)); r.Code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	tasks := deployEvents(t, d, `kind == "deploy.task.start"`)
	task := tasks[len(tasks)-1].Data["task"]
	var order []string
	for _, ev := range deployEvents(t, d, fmt.Sprintf(`(kind == "deploy.instance.update" || kind == "deploy.canary.ok") && data.task == %v`, task)) {
		order = append(order, ev.Kind+" "+strings.TrimPrefix(ev.Subject, "redis/"))
	}
	slave1 := "deploy.instance.update redis-slave/1"
	want := []string{"deploy.instance.update redis-master/0", "deploy.canary.ok redis-master/0",
		"deploy.instance.update redis-slave/0", "deploy.canary.ok redis-slave/0", slave1}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("rollout order:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	if compiles := len(deployEvents(t, d, `kind == "deploy.compile"`)); compiles != 1 {
		t.Errorf("the package compiled again (%d), want it cached by fingerprint", compiles)
	}
	ins = deployInstances(t, d)
	for name, in := range ins {
		if page := curlPage(t, in.IP); !strings.HasPrefix(page, "hi from") {
			t.Errorf("%s answers %q after the property change", name, page)
		}
	}
	// The hooks ran: drain before the update, post-start after it,
	// post-deploy at the end.
	m0store := cliOK(t, d, "exec", ins["redis-master/0"].Container, "--", "cat", "/var/vcap/store/drains", "/var/vcap/store/post-starts")
	if strings.Count(m0store, "drained") != 1 || strings.Count(m0store, "started") != 2 {
		t.Errorf("the master's drains and post-starts after two deploys: %q", m0store)
	}
	if out, err := exec.Command("curl", "-sS", "http://"+ins["redis-slave/1"].IP+"/post-deploy.html").CombinedOutput(); err != nil || string(out) != "deployed\n" {
		t.Errorf("post-deploy: %q %v", out, err)
	}
	if page := curlPage(t, ins["redis-master/0"].IP); !strings.Contains(page, "secret "+sm[1]+"\n") {
		t.Errorf("the password changed across deploys: %q", page)
	}

	// instances ps: the job's process, from its pid file.
	if out := cliOK(t, d, "-o", "json", "deploy", "instances", "redis", "ps", "details"); strings.Count(out, `{"job":"httpd","process":"httpd","state":"running"}`) != 3 || strings.Count(out, `"process":"sidecar","state":"running"`) != 3 || !strings.Contains(out, `"vm_cid"`) || strings.Count(out, `"az":"z1"`) != 3 {
		t.Errorf("deploy instances ps details (each instance with its AZ, z1):\n%s", out)
	}

	// The errand checks the master's page from a container of its own.
	cliOK(t, d, "deploy", "run-errand", "redis", "smoke")
	if ev := deployEvents(t, d, `kind == "deploy.errand"`); len(ev) != 1 || ev[0].Data["exit_code"] != float64(0) {
		t.Errorf("deploy.errand events: %+v", ev)
	}
	if out := cliOK(t, d, "-o", "json", "ps", "all"); strings.Contains(out, "errand") {
		t.Errorf("the errand's container is left:\n%s", out)
	}

	// stop and start an instance; recreate one: its disk stays.
	cliOK(t, d, "deploy", "stop", "redis", "redis-slave/1")
	if in := deployInstances(t, d)["redis-slave/1"]; in.ProcessState == "running" {
		t.Errorf("redis-slave/1 runs after deploy stop: %+v", in)
	}
	cliOK(t, d, "deploy", "start", "redis", "redis-slave/1")
	m0 := ins["redis-master/0"]
	cliOK(t, d, "exec", m0.Container, "--", "sh", "-c", "echo kept > /var/vcap/store/data")
	cliOK(t, d, "deploy", "recreate", "redis", "redis-master/0")
	ins = deployInstances(t, d)
	if out := cliOK(t, d, "exec", ins["redis-master/0"].Container, "--", "cat", "/var/vcap/store/data"); strings.TrimSpace(out) != "kept" {
		t.Errorf("the master's disk after recreate holds %q", out)
	}
	if boots := cliOK(t, d, "deploy", "ssh", "redis", "redis-master/0", "--", "cat", "/var/vcap/store/boots"); strings.Count(boots, "boot") < 3 {
		t.Errorf("the master's disk counts %d boots, want every boot since the first deploy", strings.Count(boots, "boot"))
	}

	// cck after a container is removed by hand (the resurrector off, so
	// that cck finds it).
	cliOK(t, d, "deploy", "resurrection", "off")
	cliOK(t, d, "rm", ins["redis-slave/0"].Container, "force")
	if out := cliOK(t, d, "deploy", "cck", "redis"); !strings.Contains(out, "missing VM") {
		t.Fatalf("cck does not find the removed container:\n%s", out)
	}
	cliOK(t, d, "deploy", "cck", "redis", "auto")
	if out := cliOK(t, d, "-o", "json", "deploy", "cck", "redis"); strings.TrimSpace(out) != "" {
		t.Errorf("cck after auto still finds:\n%s", out)
	}
	cliOK(t, d, "deploy", "resurrection", "on")

	// Kill an instance's process: the resurrector recreates it with its
	// persistent disk.
	ins = deployInstances(t, d)
	s1 := ins["redis-slave/1"]
	cliOK(t, d, "exec", s1.Container, "--", "sh", "-c", "echo precious > /var/vcap/store/data")
	// The sidecar, the second of the job's two processes: any process
	// ending is the instance failing.
	cliOK(t, d, "exec", s1.Container, "--", "sh", "-c", "kill -9 $(cat /var/vcap/sys/run/httpd/sidecar.pid)")
	waitFor(t, "deploy.resurrect", 30*time.Second, func() bool {
		return len(deployEvents(t, d, `kind == "deploy.resurrect"`)) > 0
	})
	res := deployEvents(t, d, `kind == "deploy.resurrect"`)[0]
	if res.Data["error"] != nil {
		t.Fatalf("resurrection failed: %v", res.Data["error"])
	}
	ins = deployInstances(t, d)
	s1 = ins["redis-slave/1"]
	if s1.ProcessState != "running" {
		t.Fatalf("redis-slave/1 after resurrection: %+v", s1)
	}
	if out := cliOK(t, d, "exec", s1.Container, "--", "cat", "/var/vcap/store/data"); strings.TrimSpace(out) != "precious" {
		t.Errorf("the persistent disk after resurrection holds %q", out)
	}
	if page := curlPage(t, s1.IP); !strings.HasPrefix(page, "hi from redis-slave/1 at "+s1.IP) {
		t.Errorf("resurrected redis-slave/1 answers %q", page)
	}

	// A template error: an error naming template:line before anything
	// changes.
	r := deployFile(redisManifest("bye", "80", true))
	if r.Code == 0 || !strings.Contains(r.Stderr, "httpd/templates/index.html.erb:7: Can't find property 'no.such.property'") {
		t.Fatalf("deploy with a template error: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for name, in := range deployInstances(t, d) {
		if page := curlPage(t, in.IP); !strings.HasPrefix(page, "hi from") {
			t.Errorf("%s answers %q after a refused deploy", name, page)
		}
	}

	// A canary that does not run (httpd refuses the port) stops the
	// deploy: the other slave still answers with the old content.
	r = deployFile(redisManifest("hi", "notaport", false))
	if r.Code == 0 || !strings.Contains(r.Stderr, "canary of redis-slave failed") {
		t.Fatalf("deploy with a failing canary: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if fails := deployEvents(t, d, `kind == "deploy.canary.fail"`); len(fails) != 1 || fails[0].Subject != "redis/redis-slave/0" {
		t.Errorf("canary failures: %+v", fails)
	}
	ins = deployInstances(t, d)
	if page := curlPage(t, ins["redis-slave/1"].IP); !strings.HasPrefix(page, "hi from redis-slave/1") {
		t.Errorf("redis-slave/1 answers %q after the failed canary", page)
	}
	if in := ins["redis-slave/0"]; in.ProcessState == "running" {
		t.Errorf("the failed canary runs: %+v", in)
	}
	// Its processes' output is in the logs stream: httpd's complaint and
	// the run script's word on its end.
	if logs, stderr, _ := cli(t, d, "logs", ins["redis-slave/0"].Container); !strings.Contains(logs+stderr, "cairn: process httpd/httpd exited") {
		t.Errorf("the failed canary's logs:\n%s\n%s", logs, stderr)
	}

	// Fixed, the next deploy finishes the rollout.
	if r := deployFile(redisManifest("again", "80", false)); r.Code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for name, in := range deployInstances(t, d) {
		if page := curlPage(t, in.IP); !strings.HasPrefix(page, "again from") {
			t.Errorf("%s answers %q", name, page)
		}
	}

	// delete: no container, instance directory or disk is left.
	cliOK(t, d, "deploy", "delete", "redis")
	if out := cliOK(t, d, "-o", "json", "ps", "all"); strings.Contains(out, "redis.") {
		t.Errorf("containers left after deploy delete:\n%s", out)
	}
	for _, sub := range []string{"instances/redis", "disks/redis"} {
		if _, err := os.Stat(filepath.Join(d.Data, "deploy", sub)); !os.IsNotExist(err) {
			t.Errorf("%s is left after deploy delete (%v)", sub, err)
		}
	}
	// No rootfs mount or runc state, and no network endpoint (its
	// namespace, hence its address) of any instance is left.
	requireNoLeaks(t, d, nil)
	if ns, _ := os.ReadDir(filepath.Join(d.Data, "runtime", "net", "netns")); len(ns) != 0 {
		t.Errorf("%d network namespaces left after deploy delete", len(ns))
	}
}

// TestDeploySIGKILLMidDeploy kills the daemon while a canary is watched:
// after restart the task is failed, deploy instances says what each
// container is, and deploy again finishes the rollout.
func TestDeploySIGKILLMidDeploy(t *testing.T) {
	requireRuntime(t, "curl")
	d := deployDaemon(t, "--deploy-health-interval", "200ms")
	importBusybox(t, d, nil)
	cliOK(t, d, "stemcell", "upload", "busybox", "name=bosh-busybox", "version=1")
	rel := t.TempDir()
	writeTree(t, rel, webRelease)
	cliOK(t, d, "release", "upload", rel)

	dir := t.TempDir()
	// The slaves' canary is watched for a minute: the kill lands in it.
	slow := strings.Replace(redisManifest("hello", "80", false), "- name: redis-slave\n", "- name: redis-slave\n  update: {canary_watch_time: 60000}\n", 1)
	writeTree(t, dir, map[string]string{"redis.yml": slow})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := cliCommand(ctx, d, "deploy", "./redis.yml")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slaves' canary", 30*time.Second, func() bool {
		return len(deployEvents(t, d, `kind == "deploy.instance.create" && subject == "redis/redis-slave/0"`)) > 0
	})
	d.Kill()
	_ = cmd.Wait()
	d.Restart()

	tasks := parseNDJSON[struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Error string `json:"error"`
	}](t, cliOK(t, d, "-o", "json", "deploy", "tasks"))
	if len(tasks) != 1 || tasks[0].State != "error" || !strings.Contains(tasks[0].Error, "daemon stopped") {
		t.Fatalf("the interrupted task: %+v", tasks)
	}
	if fails := deployEvents(t, d, `kind == "deploy.task.fail"`); len(fails) != 1 {
		t.Errorf("deploy.task.fail events: %+v", fails)
	}
	ins := deployInstances(t, d)
	if in := ins["redis-master/0"]; in.ProcessState != "running" {
		t.Errorf("redis-master/0 after the kill: %+v", in)
	}
	if in := ins["redis-slave/0"]; in.ProcessState != "running" {
		t.Errorf("redis-slave/0 (the canary, its container outlives the daemon): %+v", in)
	}
	if in := ins["redis-slave/1"]; in.ProcessState != "not created" {
		t.Errorf("redis-slave/1 was never created: %+v", in)
	}

	writeTree(t, dir, map[string]string{"redis.yml": redisManifest("hello", "80", false)})
	if r := cliIn(t, d, dir, "deploy", "./redis.yml"); r.Code != 0 {
		t.Fatalf("deploy after the restart: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	ins = deployInstances(t, d)
	if len(ins) != 3 {
		t.Fatalf("instances: %+v", ins)
	}
	for name, in := range ins {
		if page := curlPage(t, in.IP); !strings.HasPrefix(page, "hello from "+name+" at "+in.IP) {
			t.Errorf("%s answers %q", name, page)
		}
	}
}

// TestDeployCloudConfig: a vm_type's ram and cpu are the instances'
// container limits, and a manifest naming what the cloud config lacks
// is refused before anything changes.
func TestDeployCloudConfig(t *testing.T) {
	requireRuntime(t, "curl")
	d := deployDaemon(t)
	importBusybox(t, d, nil)
	cliOK(t, d, "stemcell", "upload", "busybox", "name=bosh-busybox", "version=1")
	rel := t.TempDir()
	writeTree(t, rel, webRelease)
	cliOK(t, d, "release", "upload", rel)
	dir := t.TempDir()
	// The manual network is a bridge of its own with this subnet: one no
	// other test's daemon uses at the same time.
	k := rand.IntN(200) + 20
	cloud := fmt.Sprintf(`azs: [{name: z1}]
vm_types:
- {name: default, cloud_properties: {ram: 64, cpu: 0.5}}
disk_types: [{name: default, disk_size: 1024}]
networks:
- name: default
  type: manual
  subnets:
  - range: 10.94.%[1]d.0/24
    gateway: 10.94.%[1]d.254
    reserved: [10.94.%[1]d.1 - 10.94.%[1]d.9]
    static: [10.94.%[1]d.10 - 10.94.%[1]d.19]
    az: z1
compilation: {workers: 1, network: default, vm_type: default, az: z1}
`, k)
	manifest := strings.Replace(redisManifest("hello", "80", false), "networks: [{name: default}]",
		fmt.Sprintf("networks: [{name: default, static_ips: [10.94.%d.15]}]", k), 1)
	writeTree(t, dir, map[string]string{"cloud.yml": cloud, "redis.yml": manifest})
	cliInOK(t, d, dir, "cloud-config", "update", "./cloud.yml")
	if out := cliOK(t, d, "cloud-config"); !strings.Contains(out, "ram: 64") {
		t.Fatalf("cloud-config answers:\n%s", out)
	}
	cliInOK(t, d, dir, "deploy", "./redis.yml")
	// BOSH's addresses: the master's static IP; the slaves the lowest
	// addresses past the reserved and static ranges; all on the manual
	// network's own bridge, whose gateway ip shows.
	wantIPs := map[string]string{"redis-master/0": fmt.Sprintf("10.94.%d.15", k),
		"redis-slave/0": fmt.Sprintf("10.94.%d.20", k), "redis-slave/1": fmt.Sprintf("10.94.%d.21", k)}
	got := deployInstances(t, d)
	for name, ip := range wantIPs {
		if got[name].IP != ip {
			t.Errorf("%s: address %q, want %s", name, got[name].IP, ip)
		}
	}
	var net struct{ Name, Subnet, Gateway, Bridge string }
	for _, n := range parseNDJSON[struct{ Name, Subnet, Gateway, Bridge string }](t, cliOK(t, d, "-o", "json", "network", "ls")) {
		if n.Name == "bosh-default" {
			net = n
		}
	}
	if out, err := exec.Command("ip", "-4", "-o", "addr", "show", "dev", net.Bridge).Output(); err != nil || !strings.Contains(string(out), fmt.Sprintf("10.94.%d.254/24", k)) {
		t.Errorf("the manual network's bridge %q: %s %v", net.Bridge, out, err)
	}
	// The runtime's verbs take an instance as bosh ssh does: GROUP/INDEX,
	// GROUP/UUID, DEPLOYMENT/GROUP/INDEX.
	master := got["redis-master/0"]
	for _, ref := range []string{"redis-master/0", "redis-master/" + master.ID, "redis/redis-master/0", "redis-master/" + master.ID[:8]} {
		if out := strings.TrimSpace(cliOK(t, d, "exec", ref, "--", "hostname")); out != master.ID {
			t.Errorf("exec %s -- hostname: %q, want the instance id %s", ref, out, master.ID)
		}
	}
	if out := cliOK(t, d, "top", "redis-slave/1"); !strings.Contains(out, "httpd") {
		t.Errorf("top redis-slave/1:\n%s", out)
	}
	cliOK(t, d, "stats", "redis-slave/1")
	cliOK(t, d, "logs", "redis-slave/1")
	if _, errOut, code := cli(t, d, "exec", "redis-slave/7", "--", "true"); code == 0 || !strings.Contains(errOut, "no instance redis-slave/7") {
		t.Errorf("exec of an instance that is not there: exit %d, %s", code, errOut)
	}
	// Recreated, every instance keeps its address.
	cliInOK(t, d, dir, "deploy", "./redis.yml", "recreate")
	for name, in := range deployInstances(t, d) {
		if in.IP != wantIPs[name] {
			t.Errorf("after recreate %s: address %q, want %s", name, in.IP, wantIPs[name])
		}
	}
	// More instances than the network has addresses: refused before
	// anything changes.
	writeTree(t, dir, map[string]string{"big.yml": strings.Replace(manifest, "instances: 2", "instances: 300", 1)})
	if r := cliIn(t, d, dir, "deploy", "./big.yml"); r.Code == 0 || !strings.Contains(r.Stderr, "no free address") {
		t.Errorf("300 slaves on a /24: exit %d\n%s", r.Code, r.Stderr)
	}
	for name, in := range deployInstances(t, d) {
		rows := parseNDJSON[struct {
			HostConfig struct {
				Memory   int64
				NanoCpus int64
			}
		}](t, cliOK(t, d, "-o", "json", "inspect", in.Container))
		st := rows[0]
		if st.HostConfig.Memory != 64<<20 || st.HostConfig.NanoCpus != 5e8 {
			t.Errorf("%s: limits %+v, want 64 MiB and 0.5 CPU", name, st.HostConfig)
		}
		if page := curlPage(t, in.IP); !strings.HasPrefix(page, "hello from") {
			t.Errorf("%s answers %q", name, page)
		}
	}
	// vms vitals: each container's memory within its vm_type's limit.
	for _, row := range parseNDJSON[struct {
		Instance    string `json:"instance"`
		State       string `json:"state"`
		Memory      int64  `json:"memory_bytes"`
		MemoryLimit int64  `json:"memory_limit_bytes"`
		Pids        int    `json:"pids"`
		Disk        *int64 `json:"disk_bytes"`
	}](t, cliOK(t, d, "-o", "json", "deploy", "vms", "redis", "vitals")) {
		if row.State != "running" || row.MemoryLimit != 64<<20 || row.Memory <= 0 || row.Pids < 2 || row.Disk == nil || *row.Disk <= 0 {
			t.Errorf("vms vitals of %s: %+v", row.Instance, row)
		}
	}
	// A cloud config without the vm_type: the next deploy is refused.
	writeTree(t, dir, map[string]string{"cloud.yml": strings.Replace(cloud, "name: default, cloud_properties", "name: small, cloud_properties", 1)})
	cliInOK(t, d, dir, "cloud-config", "update", "./cloud.yml")
	r := cliIn(t, d, dir, "deploy", "./redis.yml", "recreate")
	if r.Code == 0 || !strings.Contains(r.Stderr, `vm_type "default" is not in the cloud config`) {
		t.Fatalf("deploy with an unknown vm_type: exit %d\n%s", r.Code, r.Stderr)
	}
	if n := len(deployEvents(t, d, `kind == "cloud_config.update"`)); n != 2 {
		t.Errorf("cloud_config.update events: %d", n)
	}

	// deploy task ID cancel ends a task while its canary is watched; deploy
	// task ID answers its events.
	writeTree(t, dir, map[string]string{"cloud.yml": cloud,
		"redis.yml": strings.Replace(strings.Replace(manifest, "hello", "slow", -1), "canary_watch_time: 500", "canary_watch_time: 60000", 1)})
	cliInOK(t, d, dir, "cloud-config", "update", "./cloud.yml")
	masterEvents := `kind.startsWith("deploy.instance.") && subject == "redis/redis-master/0"`
	before := len(deployEvents(t, d, masterEvents))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := cliCommand(ctx, d, "deploy", "./redis.yml")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var task any
	waitFor(t, "the canary's update", 30*time.Second, func() bool {
		evs := deployEvents(t, d, masterEvents)
		if len(evs) <= before {
			return false
		}
		task = evs[len(evs)-1].Data["task"]
		return true
	})
	cliOK(t, d, "deploy", "task", "cancel", fmt.Sprint(task))
	if err := cmd.Wait(); err == nil {
		t.Errorf("the cancelled deploy exited 0")
	}
	evs := parseNDJSON[deployEvent](t, cliOK(t, d, "-o", "json", "deploy", "task", fmt.Sprint(task)))
	if len(evs) == 0 || evs[0].Kind != "deploy.task.start" || evs[len(evs)-1].Kind != "deploy.task.cancel" {
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		t.Errorf("deploy task %v: %v", task, kinds)
	}
	// deploy delete leaves no container, and the manual network's bridge
	// goes with its last deployment.
	cliOK(t, d, "deploy", "delete", "redis")
	if out := cliOK(t, d, "ps", "all"); strings.Contains(out, "redis.") {
		t.Errorf("containers left after deploy delete:\n%s", out)
	}
	if ls := cliOK(t, d, "network", "ls"); strings.Contains(ls, "bosh-default") {
		t.Errorf("network ls after deploy delete:\n%s", ls)
	}
	if err := exec.Command("ip", "link", "show", net.Bridge).Run(); err == nil {
		t.Errorf("bridge %s is still there after deploy delete", net.Bridge)
	}
}

// TestDeployMeltdown: with 6 of 6 instances down at once (more than the
// 5 and 20 % of BOSH's guard), the resurrector journals deploy.meltdown
// instead of recreating them; cck then finds all six.
func TestDeployMeltdown(t *testing.T) {
	requireRuntime(t, "curl")
	d := deployDaemon(t, "--deploy-health-interval", "200ms")
	importBusybox(t, d, nil)
	cliOK(t, d, "stemcell", "upload", "busybox", "name=bosh-busybox", "version=1")
	rel := t.TempDir()
	writeTree(t, rel, webRelease)
	cliOK(t, d, "release", "upload", rel)
	dir := t.TempDir()
	m := strings.Replace(redisManifest("hello", "80", false), "  instances: 2\n", "  instances: 5\n", 1)
	writeTree(t, dir, map[string]string{"redis.yml": m})
	cliInOK(t, d, dir, "deploy", "./redis.yml")
	ins := deployInstances(t, d)
	if len(ins) != 6 {
		t.Fatalf("instances: %d", len(ins))
	}
	// Down all at once, as the monitor sees them.
	cliOK(t, d, "deploy", "resurrection", "off")
	for _, in := range ins {
		cliOK(t, d, "kill", in.Container, "signal=KILL")
	}
	waitFor(t, "every instance down", 30*time.Second, func() bool {
		for _, in := range deployInstances(t, d) {
			if in.ProcessState == "running" {
				return false
			}
		}
		return true
	})
	cliOK(t, d, "deploy", "resurrection", "on")
	waitFor(t, "deploy.meltdown", 30*time.Second, func() bool {
		return len(deployEvents(t, d, `kind == "deploy.meltdown"`)) > 0
	})
	if res := deployEvents(t, d, `kind == "deploy.resurrect"`); len(res) != 0 {
		t.Errorf("resurrected during a meltdown: %+v", res)
	}
	cliOK(t, d, "deploy", "resurrection", "off")
	if out := cliOK(t, d, "-o", "json", "deploy", "cck", "redis"); strings.Count(out, "unresponsive VM") != 6 {
		t.Errorf("cck during the meltdown:\n%s", out)
	}
	cliOK(t, d, "deploy", "cck", "redis", "auto")
	for name, in := range deployInstances(t, d) {
		if page := curlPage(t, in.IP); !strings.HasPrefix(page, "hello from") {
			t.Errorf("%s after cck auto answers %q", name, page)
		}
	}
}

// TestDeployBadInput: a manifest's mistakes are errors naming their
// place, before anything changes, and the daemon keeps serving.
func TestDeployBadInput(t *testing.T) {
	requireRuntime(t, "curl")
	d := deployDaemon(t)
	importBusybox(t, d, nil)
	cliOK(t, d, "stemcell", "upload", "busybox", "name=bosh-busybox", "version=1")
	rel := t.TempDir()
	writeTree(t, rel, webRelease)
	cliOK(t, d, "release", "upload", rel)
	good := redisManifest("hello", "80", false)
	dir := t.TempDir()
	bogus := strings.Replace(good, "  instances: 2\n", "  instances: 2\n  bogus: 1\n", 1)
	bogusLine := 1 + strings.Count(bogus[:strings.Index(bogus, "bogus:")], "\n")
	for _, c := range []struct{ manifest, want string }{
		{"name: x\ninstance_groups:\n  - name: a\n   instances: 1\n", "redis.yml:"},
		{strings.Replace(good, "{name: web, version: latest}", "{name: nope, version: latest}", 1), "releases: nope/latest is not uploaded"},
		{strings.Replace(good, "os: bosh-busybox", "os: windows", 1), "stemcells: windows/latest is not uploaded"},
		{strings.Replace(good, "- name: httpd\n    release: web\n    properties: {greeting: hello, secret", "- name: nginx\n    release: web\n    properties: {greeting: hello, secret", 1), "job nginx is not in release web/1"},
		{bogus, fmt.Sprintf("redis.yml:%d:3: field bogus not found", bogusLine)},
		{strings.Replace(good, "greeting: hello, secret: ((page_secret))", "greeting: ((nobody_gives_this))", 1), "((nobody_gives_this)) has no value"},
		{strings.Replace(good, "fail_render: false", "fail_render: true", 1), "httpd/templates/index.html.erb:7: Can't find property 'no.such.property'"},
	} {
		writeTree(t, dir, map[string]string{"redis.yml": c.manifest})
		r := cliIn(t, d, dir, "deploy", "./redis.yml")
		if r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("deploy: exit %d, stderr %q, want %q", r.Code, r.Stderr, c.want)
		}
	}
	if n := len(deployEvents(t, d, `kind.startsWith("deploy.")`)); n != 0 {
		t.Errorf("refused deploys wrote %d deploy events", n)
	}
	// dry-run answers the diff and changes nothing.
	writeTree(t, dir, map[string]string{"redis.yml": good})
	if out := cliInOK(t, d, dir, "deploy", "./redis.yml", "dry-run"); !strings.Contains(out, "+ name: redis") {
		t.Errorf("dry-run answers:\n%s", out)
	}
	if out := cliOK(t, d, "-o", "json", "ps", "all"); strings.Contains(out, "redis.") {
		t.Errorf("dry-run made containers:\n%s", out)
	}
	if _, _, code := cli(t, d, "deploy", "instances", "redis"); code == 0 {
		t.Errorf("dry-run made a deployment")
	}
	// An image tagged stemcell/NAME:VERSION is a stemcell without an
	// upload.
	cliOK(t, d, "image", "tag", "busybox", "stemcell/tagged-os:7")
	tagged := strings.Replace(good, "{alias: default, os: bosh-busybox, version: latest}", "{alias: default, os: tagged-os, version: \"7\"}", 1)
	writeTree(t, dir, map[string]string{"redis.yml": tagged})
	cliInOK(t, d, dir, "deploy", "./redis.yml", "dry-run")
	if out := cliOK(t, d, "stemcells"); !strings.Contains(out, "tagged-os") {
		t.Errorf("stemcells after a deploy naming a tagged image:\n%s", out)
	}
	// A bad release and a stemcell of no image.
	bad := t.TempDir()
	writeTree(t, bad, map[string]string{"release.MF": "name: bad\nversion: 1\n", "jobs/j/spec": "name: j\npackages: [missing]\n"})
	if _, stderr, code := cli(t, d, "release", "upload", bad); code == 0 || !strings.Contains(stderr, "jobs/j/spec: package missing is not in the release") {
		t.Errorf("release upload of a bad release: exit %d %q", code, stderr)
	}
	if _, stderr, code := cli(t, d, "stemcell", "upload", "nosuchimage", "name=x", "version=1"); code == 0 || stderr == "" {
		t.Errorf("stemcell upload of no image: exit %d %q", code, stderr)
	}
	d.requireServing()
}
