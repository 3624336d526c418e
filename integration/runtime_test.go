package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// requireRuntime skips a test that runs containers where it cannot (not
// root, no runc); with CI=true a missing tool fails it.
func requireRuntime(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containers need root (CI runs as root)")
	}
	for _, tool := range append([]string{"runc"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI installs it, see .ci/run): %v", tool, err)
			}
			t.Skipf("%s not found; install it (see .ci/run) to run this test", tool)
		}
	}
}

// runtimeDaemon starts a daemon with its own bridge and subnet, so tests
// running at once do not share them, and removes the bridge afterwards.
func runtimeDaemon(t *testing.T, flags ...string) (*daemonProc, string) {
	t.Helper()
	return containerDaemon(t, "cairnt", "10.89", nil, flags...)
}

// containerDaemon starts a daemon with flags and a bridge and subnet of
// its own (bridgePrefix and a number, a /24 in subnetPrefix.0.0/16), and
// removes at the end what its containers leave: containers, mounts,
// bridge and NAT rules. beforeCleanup, when given, runs first, while the
// daemon still answers.
func containerDaemon(t *testing.T, bridgePrefix, subnetPrefix string, beforeCleanup func(*daemonProc), flags ...string) (*daemonProc, string) {
	t.Helper()
	n := rand.IntN(200) + 20
	bridge := fmt.Sprintf("%s%d", bridgePrefix, n)
	subnet := fmt.Sprintf("%s.%d.0/24", subnetPrefix, n)
	d := startDaemon(t, withFlags(append([]string{"--runtime-bridge", bridge, "--runtime-subnet", subnet}, flags...)...))
	// Cleanups run last first: this one while the daemon still runs. A
	// test that failed half way leaves containers, which outlive daemons
	// by design: remove them through the daemon, then make sure with runc.
	t.Cleanup(func() {
		if beforeCleanup != nil && d.running() {
			beforeCleanup(d)
		}
		dir := filepath.Join(d.Data, "runtime", "containers")
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if d.running() {
				cli(t, d, "rm", e.Name(), "force")
			}
		}
		root := filepath.Join(d.Data, "runtime", "runc")
		for _, e := range ents {
			exec.Command("runc", "--root", root, "delete", "--force", e.Name()).Run()
			exec.Command("umount", "-l", filepath.Join(dir, e.Name(), "rootfs")).Run()
		}
		netns, _ := os.ReadDir(filepath.Join(d.Data, "runtime", "net", "netns"))
		for _, e := range netns {
			exec.Command("umount", "-l", filepath.Join(d.Data, "runtime", "net", "netns", e.Name())).Run()
		}
		// Networks of network create: removed through the daemon, else
		// by hand from their definitions.
		nets, _ := filepath.Glob(filepath.Join(d.Data, "runtime", "networks", "*", "network.json"))
		for _, f := range nets {
			var def struct{ Name, Subnet, Bridge string }
			b, _ := os.ReadFile(f)
			if json.Unmarshal(b, &def) != nil {
				continue
			}
			if d.running() {
				if _, _, code := cli(t, d, "network", "rm", def.Name); code == 0 {
					continue
				}
			}
			ns, _ := filepath.Glob(filepath.Join(filepath.Dir(f), "netns", "*"))
			for _, p := range ns {
				exec.Command("umount", "-l", p).Run()
			}
			exec.Command("ip", "link", "del", def.Bridge).Run()
			exec.Command("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", def.Subnet, "!", "-o", def.Bridge, "-j", "MASQUERADE").Run()
		}
		exec.Command("ip", "link", "del", bridge).Run()
		for _, rule := range [][]string{
			{"-t", "nat", "-D", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"},
			{"-D", "FORWARD", "-i", bridge, "-j", "ACCEPT"},
			{"-D", "FORWARD", "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		} {
			exec.Command("iptables", rule...).Run()
		}
	})
	return d, subnet
}

// importBusybox imports the test image, made by the test from Debian's
// busybox-static, as busybox:latest.
func importBusybox(t *testing.T, d *daemonProc, extra map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busybox.tar")
	imagetest.BusyboxArchive(t, path, "busybox:latest", extra)
	cliOK(t, d, "image", "import", path, "tag=busybox")
	return path
}

type inspectState struct {
	ID    string `json:"Id"`
	State struct {
		Status    string
		Running   bool
		Pid       int
		ExitCode  int
		Error     string
		OOMKilled bool
	}
	NetworkSettings struct {
		IPAddress string
	}
}

func inspectContainer(t *testing.T, d *daemonProc, ref string) inspectState {
	t.Helper()
	rows := parseNDJSON[inspectState](t, cliOK(t, d, "-o", "json", "inspect", ref))
	if len(rows) != 1 {
		t.Fatalf("inspect %s: %d rows", ref, len(rows))
	}
	return rows[0]
}

// waitFor polls cond every 50 ms until it holds or the deadline passes:
// the state it waits for is another process's, with no event to await.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitDiscarded waits until the removed containers' directories
// (.rm-ID) under dir are gone.
func awaitDiscarded(t *testing.T, dir string) {
	t.Helper()
	waitFor(t, "removed containers' directories to go", 30*time.Second, func() bool {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".rm-") {
				return false
			}
		}
		return true
	})
}

func runcList(t *testing.T, d *daemonProc) string {
	t.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(d.Data, "runtime", "runc"), "list", "-q").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "no such file") {
		t.Fatalf("runc list: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// requireNoLeaks checks that no container of d left a mount, runc state
// or cgroup behind. A removed container's directory is renamed at once
// and unmounted and deleted aside: that is awaited first.
func requireNoLeaks(t *testing.T, d *daemonProc, ids []string) {
	t.Helper()
	containers := filepath.Join(d.Data, "runtime", "containers")
	awaitDiscarded(t, containers)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), containers) {
		t.Errorf("a container rootfs is still mounted:\n%s", mi)
	}
	if l := runcList(t, d); l != "" {
		t.Errorf("runc list is not empty: %s", l)
	}
	for _, id := range ids {
		if _, err := os.Stat("/sys/fs/cgroup/memory/cairn/" + id); err == nil {
			t.Errorf("cgroup of %s is left", id[:12])
		}
	}
}

func TestRuntimeContainers(t *testing.T) {
	requireRuntime(t, "skopeo")
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)

	// The store is an OCI layout skopeo reads.
	out, err := exec.Command("skopeo", "inspect", "oci:"+filepath.Join(d.Data, "images")+":busybox:latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect the store: %v\n%s", err, out)
	}

	// Output on the CLI's stdout and stderr, its exit code the CLI's.
	stdout, stderr, code := cli(t, d, "run", "busybox", "rm", "network=none", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if stdout != "out\n" || !strings.Contains(stderr, "err") || code != 3 {
		t.Fatalf("run: stdout %q stderr %q code %d; want out, err, 3", stdout, stderr, code)
	}

	// A command that does not exist: 127, runc's message, nothing left.
	_, stderr, code = cli(t, d, "run", "busybox", "name=nosuch", "network=none", "--", "nosuchcommand")
	if code != 127 {
		t.Fatalf("run nosuchcommand: exit %d, want 127; stderr %s", code, stderr)
	}
	in := inspectContainer(t, d, "nosuch")
	if in.State.ExitCode != 127 || !strings.Contains(in.State.Error, "executable file not found") {
		t.Fatalf("inspect nosuch: %+v", in.State)
	}
	cliOK(t, d, "rm", "nosuch")
	// With rm, as docker run --rm: gone when run answers, whether its
	// command ran or not.
	for _, cmd := range [][]string{{"true"}, {"nosuchcommand"}} {
		cli(t, d, append([]string{"run", "busybox", "name=gone", "rm", "network=none", "--"}, cmd...)...)
		if out := cliOK(t, d, "ps", "all"); strings.Contains(out, "gone") {
			t.Fatalf("run rm -- %s: the container is still there when run answers:\n%s", cmd[0], out)
		}
	}

	// A detached container: ps, inspect, logs, top, stats, exec, stop, rm.
	cliOK(t, d, "run", "busybox", "name=web", "detach", "--", "sh", "-c", "echo started; while true; do sleep 1; done")
	waitFor(t, "web's output in logs", 10*time.Second, func() bool {
		out, _, _ := cli(t, d, "logs", "web")
		return out == "started\n"
	})
	if ps := cliOK(t, d, "ps"); !strings.Contains(ps, "web") || !strings.Contains(ps, "Up ") {
		t.Fatalf("ps does not show web up:\n%s", ps)
	}
	in = inspectContainer(t, d, "web")
	if !in.State.Running || in.State.Pid == 0 || in.NetworkSettings.IPAddress == "" {
		t.Fatalf("inspect web: %+v", in)
	}
	top := cliOK(t, d, "top", "web")
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sh -c echo started") {
		t.Fatalf("top web:\n%s", top)
	}
	type statsRow struct {
		Name string
		Pids string `json:"PIDs"`
	}
	stats := parseNDJSON[statsRow](t, cliOK(t, d, "-o", "json", "stats", "web"))
	if len(stats) != 1 || stats[0].Name != "web" || stats[0].Pids == "" || stats[0].Pids == "0" {
		t.Fatalf("stats web: %+v", stats)
	}
	stdout, _, code = cli(t, d, "exec", "web", "--", "sh", "-c", "echo fromexec; hostname; exit 4")
	if !strings.HasPrefix(stdout, "fromexec\n") || code != 4 {
		t.Fatalf("exec: %q code %d", stdout, code)
	}
	if _, _, code := cli(t, d, "rm", "web"); code == 0 {
		t.Fatal("rm of a running container succeeded without force")
	}
	cliOK(t, d, "stop", "web", "time=1s")
	in = inspectContainer(t, d, "web")
	if in.State.Running || in.State.ExitCode != 137 {
		t.Fatalf("after stop (sh as pid 1 ignores TERM, so KILL): %+v", in.State)
	}
	cliOK(t, d, "rm", "web")
	requireNoLeaks(t, d, []string{in.ID})

	// image export → skopeo reads the archive.
	exported := filepath.Join(t.TempDir(), "bb-docker.tar")
	cliOK(t, d, "image", "export", "busybox", "to="+exported, "format=docker-archive")
	if out, err := exec.Command("skopeo", "inspect", "docker-archive:"+exported).CombinedOutput(); err != nil {
		t.Fatalf("skopeo inspect the export: %v\n%s", err, out)
	}

	// The journal recorded the lifecycle.
	evs := cliOK(t, d, "events", "kind=container.*")
	for _, k := range []string{"container.create", "container.start", "container.exit", "container.rm", "container.exec"} {
		if !strings.Contains(evs, k) {
			t.Errorf("no %s event:\n%s", k, evs)
		}
	}
}

func TestRuntimeBadInput(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "nosuchimage", "--", "true"}, "nosuchimage"},
		{[]string{"run", "busybox", "memory=lots", "--", "true"}, "memory="},
		{[]string{"run", "busybox", "volume=/nonexistent/dir:/x", "--", "true"}, "volume="},
		{[]string{"run", "busybox", "network=mesh", "--", "true"}, "network="},
	} {
		_, stderr, code := cli(t, d, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error naming %q", c.args, code, stderr, c.want)
		}
	}
	// A detached command that cannot start is an error, as with docker run -d.
	if _, stderr, code := cli(t, d, "run", "busybox", "detach", "network=none", "--", "nosuchcommand"); code == 0 || !strings.Contains(stderr, "did not start") {
		t.Errorf("run detach of a missing command: exit %d, stderr %q", code, stderr)
	}
	// A relative path: the daemon would resolve it against its own directory.
	if _, stderr, code := cli(t, d, "image", "import", "busybox.tar"); code == 0 || !strings.Contains(stderr, "absolute path") {
		t.Errorf("image import of a relative path: exit %d, stderr %q", code, stderr)
	}
	// A port already in use: refused, nothing created.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	psBefore := cliOK(t, d, "-o", "json", "ps", "all")
	_, stderr, code := cli(t, d, "run", "busybox", "detach", "publish="+strconv.Itoa(port)+":80", "--", "true")
	if code == 0 || !strings.Contains(stderr, "publish=") {
		t.Fatalf("publish on a busy port: exit %d, %s", code, stderr)
	}
	if ps := cliOK(t, d, "-o", "json", "ps", "all"); strings.Count(ps, "\n") != strings.Count(psBefore, "\n") {
		t.Fatalf("a refused run left a container:\n%s", ps)
	}
	// A truncated archive: an error naming a layer, the store unchanged.
	good := filepath.Join(t.TempDir(), "bb.tar")
	imagetest.BusyboxArchive(t, good, "other:latest", nil)
	b, _ := os.ReadFile(good)
	bad := filepath.Join(t.TempDir(), "truncated.tar")
	os.WriteFile(bad, b[:len(b)*2/3], 0o644)
	before, _ := os.ReadFile(filepath.Join(d.Data, "images", "index.json"))
	_, stderr, code = cli(t, d, "image", "import", bad)
	if code == 0 {
		t.Fatal("a truncated archive was imported")
	}
	after, _ := os.ReadFile(filepath.Join(d.Data, "images", "index.json"))
	if string(before) != string(after) {
		t.Fatalf("a failed import changed index.json")
	}
	if !strings.Contains(stderr, "layer sha256:") {
		t.Fatalf("a truncated import's error does not name the layer: %s", stderr)
	}
}

func TestRuntimeBridgePublish(t *testing.T) {
	requireRuntime(t, "curl")
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, map[string]string{"/www/index.html": "hello from the container\n"})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cliOK(t, d, "run", "busybox", "name=h", "detach", "network=bridge", "publish="+strconv.Itoa(port)+":80", "--", "httpd", "-f", "-p", "80", "-h", "/www")
	ip := inspectContainer(t, d, "h").NetworkSettings.IPAddress
	for _, url := range []string{fmt.Sprintf("http://127.0.0.1:%d/", port), "http://" + ip + ":80/"} {
		var out []byte
		waitFor(t, "httpd at "+url, 10*time.Second, func() bool {
			var err error
			out, err = exec.Command("curl", "-sf", "--max-time", "2", url).Output()
			return err == nil
		})
		if string(out) != "hello from the container\n" {
			t.Fatalf("curl %s: %q", url, out)
		}
	}
	cliOK(t, d, "rm", "h", "force")
}

// TestRuntimeNetworks: a network of the user's own, as docker network
// create: its bridge and gateway (checked with ip), a container at the
// address it asked for reached with curl, another at the next free one,
// the network kept across a daemon restart, and removed only when no
// container uses it.
func TestRuntimeNetworks(t *testing.T) {
	requireRuntime(t, "curl", "ip")
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, map[string]string{"/www/index.html": "on my own network\n"})
	k := rand.IntN(200) + 20
	name := fmt.Sprintf("backend%d", rand.IntN(1_000_000))
	subnet := fmt.Sprintf("10.93.%d.0/24", k)
	gw := fmt.Sprintf("10.93.%d.254", k)
	addr := fmt.Sprintf("10.93.%d.10", k)
	var row struct{ Name, Subnet, Gateway, Bridge string }
	if err := json.Unmarshal([]byte(cliOK(t, d, "-o", "json", "network", "create", name, "subnet="+subnet, "gateway="+gw)), &row); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-4", "-o", "addr", "show", "dev", row.Bridge).Output()
	if err != nil || !strings.Contains(string(out), gw+"/24") {
		t.Fatalf("ip addr show dev %s: %s %v; want %s/24 on it", row.Bridge, out, err, gw)
	}
	if _, errOut, code := cli(t, d, "network", "create", name+"x", "subnet="+fmt.Sprintf("10.93.%d.128/25", k)); code == 0 || !strings.Contains(errOut, "overlaps") {
		t.Errorf("an overlapping subnet: exit %d, %s", code, errOut)
	}
	cliOK(t, d, "run", "busybox", "name=web", "detach", "network="+name, "ip="+addr, "--", "httpd", "-f", "-p", "80", "-h", "/www")
	if in := inspectContainer(t, d, "web"); in.NetworkSettings.IPAddress != addr {
		t.Fatalf("inspect web: address %q, want %s", in.NetworkSettings.IPAddress, addr)
	}
	var body []byte
	waitFor(t, "httpd at "+addr, 10*time.Second, func() bool {
		body, err = exec.Command("curl", "-sf", "--max-time", "2", "http://"+addr+"/").Output()
		return err == nil
	})
	if string(body) != "on my own network\n" {
		t.Fatalf("curl %s: %q", addr, body)
	}
	// The next free address, and the gateway as the default route.
	got := cliOK(t, d, "run", "busybox", "rm", "network="+name, "--", "sh", "-c", "ip -4 -o addr show eth0; ip route")
	if !strings.Contains(got, fmt.Sprintf("10.93.%d.1/24", k)) || !strings.Contains(got, "default via "+gw) {
		t.Errorf("a second container's address and route:\n%s", got)
	}
	if _, errOut, code := cli(t, d, "run", "busybox", "rm", "network="+name, "ip="+addr, "--", "true"); code == 0 || !strings.Contains(errOut, "in use") {
		t.Errorf("an address in use: exit %d, %s", code, errOut)
	}
	if _, errOut, code := cli(t, d, "run", "busybox", "rm", "network=nosuch", "--", "true"); code == 0 || !strings.Contains(errOut, "no such network") {
		t.Errorf("an unknown network: exit %d, %s", code, errOut)
	}
	d.Stop()
	d.start()
	if ls := cliOK(t, d, "network", "ls"); !strings.Contains(ls, name) || !strings.Contains(ls, "bridge") {
		t.Fatalf("network ls after a restart:\n%s", ls)
	}
	if _, errOut, code := cli(t, d, "network", "rm", name); code == 0 || !strings.Contains(errOut, "uses it") {
		t.Errorf("network rm while web uses it: exit %d, %s", code, errOut)
	}
	cliOK(t, d, "rm", "web", "force")
	cliOK(t, d, "network", "rm", name)
	if err := exec.Command("ip", "link", "show", row.Bridge).Run(); err == nil {
		t.Errorf("bridge %s is still there after network rm", row.Bridge)
	}
	if !strings.Contains(cliOK(t, d, "events", "kind=network.*"), "network.rm") {
		t.Errorf("network.create and network.rm are not journaled")
	}
}

func TestRuntimeLimits(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)

	// More than 32 MiB: the OOM killer ends it, and inspect says so.
	_, _, code := cli(t, d, "run", "busybox", "name=hog", "network=none", "memory=32MiB", "--", "sh", "-c", `x=$(dd if=/dev/zero bs=1M count=100 2>/dev/null | tr "\0" a); echo ${#x}`)
	if code != 137 {
		t.Fatalf("memory hog: exit %d, want 137", code)
	}
	if in := inspectContainer(t, d, "hog"); !in.State.OOMKilled {
		t.Fatalf("inspect hog: OOMKilled false: %+v", in.State)
	}
	cliOK(t, d, "rm", "hog")

	// A fork bomb under pids=16: the kernel refuses its 16th process, and
	// busybox sh gives up with "can't fork" — the bomb is stopped, the
	// host never sees it grow.
	_, stderr, code := cli(t, d, "run", "busybox", "name=bomb", "network=none", "pids=16", "--", "sh", "-c", "while true; do sleep 30 & done")
	if code == 0 || !strings.Contains(stderr, "can't fork") {
		t.Fatalf("fork bomb under pids=16: exit %d, stderr %q; want a refused fork", code, stderr)
	}
	in := inspectContainer(t, d, "bomb")
	cliOK(t, d, "rm", "bomb")
	requireNoLeaks(t, d, []string{in.ID})
}

// TestRuntimeSurvivesKill kills the daemon while 10 containers run: after
// a restart they are all there, their logs go on, and removing them
// leaves no mount, runc state or cgroup.
func TestRuntimeSurvivesKill(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	const n = 10
	var ids []string
	for i := range n {
		out := cliOK(t, d, "-o", "json", "run", "busybox", "name=c"+strconv.Itoa(i), "detach", "network=none", "--", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")
		var row struct{ ID string }
		json.Unmarshal([]byte(out), &row)
		ids = append(ids, row.ID)
	}
	logLines := func(name string) int {
		out, _, _ := cli(t, d, "logs", name)
		return strings.Count(out, "tick ")
	}
	waitFor(t, "output of c9", 10*time.Second, func() bool { return logLines("c9") > 0 })
	// The record keeps the output offsets while the container writes
	// (every few seconds), not only at its start and end: a restarted
	// daemon reads back only the stream's last seconds.
	waitFor(t, "c0's record to carry its stdout offset", 10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(d.Data, "runtime", "containers", ids[0], "container.json"))
		var rec struct{ LogOffsets [2]int64 }
		return err == nil && json.Unmarshal(b, &rec) == nil && rec.LogOffsets[0] > 0
	})
	d.Kill()
	time.Sleep(time.Second) // the containers write while no daemon runs
	d.start()
	ps := cliOK(t, d, "ps")
	for i := range n {
		if !strings.Contains(ps, "c"+strconv.Itoa(i)+"\n") && !strings.Contains(ps, " c"+strconv.Itoa(i)) {
			t.Fatalf("after restart, ps does not show c%d:\n%s", i, ps)
		}
	}
	before := logLines("c3")
	waitFor(t, "c3's logs to go on after the restart", 10*time.Second, func() bool { return logLines("c3") > before+3 })
	// Nothing written while the daemon was down is lost: tick numbers are
	// consecutive.
	out, _, _ := cli(t, d, "logs", "c3")
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "tick "+strconv.Itoa(i) {
			t.Fatalf("c3's log line %d is %q", i, line)
		}
	}
	for i := range n {
		cliOK(t, d, "rm", "c"+strconv.Itoa(i), "force")
	}
	requireNoLeaks(t, d, ids)
}

// TestRuntimeCaptureSeesContainer checks that the capture engine names
// cairn's containers: a process run in one has its container.id.
func TestRuntimeCaptureSeesContainer(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	if _, stderr, code := cli(t, d, "capture", "start", "proc"); code != 0 {
		if os.Getenv("CI") != "true" && strings.Contains(stderr, "failed_precondition") {
			t.Skipf("the proc source cannot run here: %s", stderr)
		}
		t.Fatalf("capture start proc: %s", stderr)
	}
	out := cliOK(t, d, "-o", "json", "run", "busybox", "name=seen", "detach", "network=none", "--", "sh", "-c", "sleep 0.5; hostname; sleep 600")
	var row struct{ ID string }
	json.Unmarshal([]byte(out), &row)
	short := row.ID[:12]
	waitFor(t, "a capture event of the container's process", 15*time.Second, func() bool {
		out, _, _ := cli(t, d, "events", "stream=capture", "where", fmt.Sprintf("container.id == %q", short))
		return strings.Contains(out, "capture.exec")
	})
	// Its output is in the logs stream under its name, for filters.
	waitFor(t, "the container's output in the logs stream", 10*time.Second, func() bool {
		out, _, _ := cli(t, d, "events", "stream=logs", "where", `container.name == "seen" && data.stream == "stdout"`)
		return strings.Contains(out, short)
	})
	cliOK(t, d, "rm", "seen", "force")
}

// TestRuntimeRestartPolicy checks that the daemon keeps a container's
// restart policy: on-failure:2 runs it three times in all, and a
// container that ended while the daemon was down is restarted by the
// next one.
func TestRuntimeRestartPolicy(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	cliOK(t, d, "run", "busybox", "name=flaky", "detach", "network=none", "restart=on-failure:2", "--", "sh", "-c", "echo run; exit 1")
	waitFor(t, "two restarts and a final exit", 15*time.Second, func() bool {
		in := inspectContainer(t, d, "flaky")
		out, _, _ := cli(t, d, "logs", "flaky")
		return in.State.Status == "exited" && strings.Count(out, "run\n") == 3
	})
	if evs := cliOK(t, d, "events", "kind=container.restart"); strings.Count(evs, "container.restart") != 2 {
		t.Fatalf("want 2 container.restart events:\n%s", evs)
	}

	// always: killed while the daemon is down, it is started again by the
	// next daemon, which records the exit it missed.
	cliOK(t, d, "run", "busybox", "name=steady", "detach", "network=none", "restart=always", "--", "sleep", "600")
	in := inspectContainer(t, d, "steady")
	d.Kill()
	b, err := os.ReadFile("/sys/fs/cgroup/pids/cairn/" + in.ID + "/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(p)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, "the container's shim to record its end", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(d.Data, "runtime", "containers", in.ID, "exit"))
		return err == nil
	})
	d.start()
	waitFor(t, "steady running again", 15*time.Second, func() bool {
		in := inspectContainer(t, d, "steady")
		return in.State.Running
	})
	evs := cliOK(t, d, "-o", "json", "events", "kind=container.exit", "subject=steady")
	if !strings.Contains(evs, `"exit_code":137`) {
		t.Fatalf("the exit while the daemon was down is not recorded:\n%s", evs)
	}

	// A stop during the back-off between two runs ends the back-off: the
	// container is exited at once, wait answers, and it stays down.
	cliOK(t, d, "run", "busybox", "name=bouncer", "detach", "network=none", "restart=always", "--", "sh", "-c", "exit 3")
	waitFor(t, "bouncer in its restart back-off", 15*time.Second, func() bool {
		return inspectContainer(t, d, "bouncer").State.Status == "restarting"
	})
	cliOK(t, d, "stop", "bouncer", "time=1s")
	if in := inspectContainer(t, d, "bouncer"); in.State.Status != "exited" || in.State.Running {
		t.Fatalf("bouncer stopped during its back-off is %q (running %v), want exited", in.State.Status, in.State.Running)
	}
	cliOK(t, d, "wait", "bouncer")
	starts := strings.Count(cliOK(t, d, "events", "kind=container.start", "subject=bouncer"), "container.start")

	// At the daemon's start, as Docker's: always brings back a container
	// stopped by hand, unless-stopped does not.
	cliOK(t, d, "run", "busybox", "name=polite", "detach", "network=none", "restart=unless-stopped", "--", "sleep", "600")
	cliOK(t, d, "stop", "polite", "time=1s")
	cliOK(t, d, "stop", "steady", "time=1s")
	d.Stop()
	d.start()
	waitFor(t, "steady (always, stopped by hand) running after the daemon's start", 15*time.Second, func() bool {
		return inspectContainer(t, d, "steady").State.Running
	})
	if in := inspectContainer(t, d, "polite"); in.State.Running || in.State.Status != "exited" {
		t.Fatalf("polite (unless-stopped, stopped by hand) is %q after the daemon's start, want exited", in.State.Status)
	}
	// bouncer (always, exited by stop) came back too, like steady; before
	// the daemon's restart its back-off had not restarted it. The daemon
	// brings its containers back each on its own, so steady running says
	// nothing of bouncer yet.
	waitFor(t, fmt.Sprintf("bouncer (always) started at the daemon's start (%d starts before)", starts), 15*time.Second, func() bool {
		return strings.Count(cliOK(t, d, "events", "kind=container.start", "subject=bouncer"), "container.start") > starts
	})
}

// TestRuntimeNonRootDenied checks that the runtime's host verbs go
// through the authorization model: a member of the socket's group who is
// not root may read (ps) but not run, remove or import.
func TestRuntimeNonRootDenied(t *testing.T) {
	requireRuntime(t)
	requireRootForUsers(t)
	d := startGroupDaemon(t)
	if _, stderr, code := userCLI(t, d, "ps", "all"); code != 0 {
		t.Fatalf("ps as uid %d: exit %d: %s", testUID, code, stderr)
	}
	for _, args := range [][]string{
		{"run", "busybox", "--", "true"},
		{"image", "import", "/tmp/busybox.tar"},
		{"rm", "x", "force"},
	} {
		_, stderr, code := userCLI(t, d, args...)
		if code == 0 || !strings.Contains(stderr, "permission_denied") {
			t.Errorf("%v as uid %d: exit %d, stderr %q; want permission_denied", args, testUID, code, stderr)
		}
	}
}

// TestRuntimeRmDuringRun removes containers while their run is still
// creating them, asking again and again on a connection of its own: the
// rm waits for the create (or finds no container yet), and nothing is
// left behind either way: no entry, mount, directory or runc state.
func TestRuntimeRmDuringRun(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	runner, remover := dial(t, d), dial(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 10 {
		name := fmt.Sprintf("race%d", i)
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			// The run may fail: its container can be removed under it.
			_, _ = runner.Do(ctx, "run busybox name="+name+" detach network=none -- sleep 600")
		}()
		for {
			_, err := remover.Do(ctx, "rm "+name+" force")
			if err == nil {
				break
			}
			select {
			case <-ran:
				// The run has answered: the container exists now, or
				// never will; one more rm settles it.
				_, _ = remover.Do(ctx, "rm "+name+" force")
			default:
				continue
			}
			break
		}
		<-ran
	}
	if out := cliOK(t, d, "ps", "all"); strings.Contains(out, "race") {
		t.Fatalf("a raced container is left:\n%s", out)
	}
	requireNoLeaks(t, d, nil)
	ents, _ := os.ReadDir(filepath.Join(d.Data, "runtime", "containers"))
	if len(ents) != 0 {
		t.Fatalf("container directories are left: %v", ents)
	}
}

// TestRuntimeInterruptedCreate: a create that a daemon's end interrupted
// leaves a directory with no record, perhaps with its rootfs mounted; the
// next daemon removes both.
func TestRuntimeInterruptedCreate(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	d.Stop()
	dir := filepath.Join(d.Data, "runtime", "containers", strings.Repeat("ab", 32))
	// And a removal the daemon's end interrupted: the directory renamed,
	// its rootfs still mounted.
	discarded := filepath.Join(d.Data, "runtime", "containers", ".rm-"+strings.Repeat("cd", 32))
	for _, dir := range []string{dir, discarded} {
		rootfs := filepath.Join(dir, "rootfs")
		if err := os.MkdirAll(rootfs, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", rootfs, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, "file"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(rootfs, syscall.MNT_DETACH) })
	}
	d.start()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the interrupted create's directory is still there (%v)", err)
	}
	if _, err := os.Stat(discarded); !os.IsNotExist(err) {
		t.Fatalf("the interrupted removal's directory is still there (%v)", err)
	}
	requireNoLeaks(t, d, nil)
}

// TestRuntimeInterruptedRemoval: a daemon that ends after a removal
// renamed the container's directory and before it recorded the removal
// (run rm's exit and rm are one append after the rename) leaves a .rm-ID
// directory and no event; the next daemon records the container.rm, and
// the container.exit before it when the record says the container was
// running, with the status its shim wrote, then deletes the directory. A
// removal the journal holds already is not recorded twice.
func TestRuntimeInterruptedRemoval(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	idOf := func(out string) string {
		var row struct{ ID string }
		if err := json.Unmarshal([]byte(out), &row); err != nil || row.ID == "" {
			t.Fatalf("run answered %q (%v)", out, err)
		}
		return row.ID
	}
	// done: ran and exited, its record saved as exited.
	done := idOf(cliOK(t, d, "-o", "json", "run", "busybox", "name=done", "detach", "network=none", "--", "true"))
	waitFor(t, "done's exit", 10*time.Second, func() bool {
		return strings.Contains(cliOK(t, d, "events", "kind=container.exit", "subject=done"), "container.exit")
	})
	// removed: removed properly, its rm in the journal.
	removed := idOf(cliOK(t, d, "-o", "json", "run", "busybox", "name=removed", "detach", "network=none", "--", "true"))
	containers := filepath.Join(d.Data, "runtime", "containers")
	waitFor(t, "removed's exit", 10*time.Second, func() bool {
		return strings.Contains(cliOK(t, d, "events", "kind=container.exit", "subject=removed"), "container.exit")
	})
	removedRec, err := os.ReadFile(filepath.Join(containers, removed, "container.json"))
	if err != nil {
		t.Fatal(err)
	}
	cliOK(t, d, "rm", "removed")
	// running: its record says running when the daemon dies, and it ends
	// (status 3) while no daemon runs.
	running := idOf(cliOK(t, d, "-o", "json", "run", "busybox", "name=running", "detach", "network=none", "--", "sh", "-c", "sleep 1; exit 3"))
	d.Kill()
	waitFor(t, "running's shim to record its exit", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(containers, running, "exit"))
		return err == nil
	})
	for _, id := range []string{done, running} {
		if err := os.Rename(filepath.Join(containers, id), filepath.Join(containers, ".rm-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	// done's record says running, as a run rm container's does when a
	// plain rm raced its exit: the journal, which holds its exit, decides.
	rec := filepath.Join(containers, ".rm-"+done, "container.json")
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, bytes.Replace(b, []byte(`"Running": false`), []byte(`"Running": true`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	// A record that cannot be read: the directory goes, with no event.
	garbled := filepath.Join(containers, ".rm-"+strings.Repeat("ef", 32))
	if err := os.MkdirAll(garbled, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(garbled, "container.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(containers, ".rm-"+removed), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(containers, ".rm-"+removed, "container.json"), removedRec, 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()

	type event struct {
		Kind    string
		Subject string
		Data    map[string]any
	}
	var rms, exits []event
	for _, line := range strings.Split(strings.TrimSpace(cliOK(t, d, "-o", "json", "events", "kind=container.*")), "\n") {
		var ev event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		switch ev.Kind {
		case "container.rm":
			rms = append(rms, ev)
		case "container.exit":
			exits = append(exits, ev)
		}
	}
	count := func(evs []event, id string) (n int, last event) {
		for _, ev := range evs {
			if ev.Data["id"] == id {
				n, last = n+1, ev
			}
		}
		return n, last
	}
	for _, id := range []string{done, running, removed} {
		if n, _ := count(rms, id); n != 1 {
			t.Errorf("container %s: %d container.rm events, want 1", id[:12], n)
		}
	}
	if n, ev := count(exits, running); n != 1 || ev.Data["exit_code"] != float64(3) {
		t.Errorf("running: %d container.exit events, last %+v; want one with exit_code 3", n, ev.Data)
	}
	if n, _ := count(exits, done); n != 1 {
		t.Errorf("done: %d container.exit events, want the one of its run only", n)
	}
	for _, id := range []string{done, running, removed, strings.Repeat("ef", 32)} {
		if _, err := os.Stat(filepath.Join(containers, ".rm-"+id)); !os.IsNotExist(err) {
			t.Errorf("the interrupted removal's directory %s is still there (%v)", id[:12], err)
		}
	}
	if ps := cliOK(t, d, "ps", "all"); strings.Contains(ps, "done") || strings.Contains(ps, "running") {
		t.Errorf("ps all after the sweep:\n%s", ps)
	}
	requireNoLeaks(t, d, []string{done, running, removed})
}

// TestRuntimeLogsFollowEnds: as docker logs --follow, a follow of a
// container's output ends when its run does, with every line answered;
// of a container that is not running, it answers what is stored and ends.
func TestRuntimeLogsFollowEnds(t *testing.T) {
	requireRuntime(t)
	d, _ := runtimeDaemon(t)
	importBusybox(t, d, nil)
	cliOK(t, d, "run", "busybox", "name=brief", "detach", "network=none", "--", "sh", "-c", "echo first; sleep 1; echo last")
	if out := cliOK(t, d, "logs", "brief", "follow"); out != "first\nlast\n" {
		t.Fatalf("logs follow of a run that ends answered %q, want both lines", out)
	}
	if out := cliOK(t, d, "logs", "brief", "follow"); out != "first\nlast\n" {
		t.Fatalf("logs follow of an exited container answered %q", out)
	}
}
