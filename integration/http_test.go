package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// Every daemon these tests start binds its HTTP listener on a free port
	// unless a test says otherwise: the default, 127.0.0.1:8500, would make
	// parallel daemons refuse to start. (The harness passes --nats
	// 127.0.0.1:0 for the same reason; CAIRN_HTTP is --http's default.)
	if os.Getenv("CAIRN_HTTP") == "" {
		os.Setenv("CAIRN_HTTP", "127.0.0.1:0")
	}
	if os.Getenv("CAIRN_DNS") == "" { // --dns's default, 127.0.0.1:8600, likewise
		os.Setenv("CAIRN_DNS", "127.0.0.1:0")
	}
}

// httpEvent is an event as `-o json` prints it, with the actor's address.
type httpEvent struct {
	Seq     int64          `json:"seq"`
	Kind    string         `json:"kind"`
	Subject string         `json:"subject"`
	Data    map[string]any `json:"data"`
	Actor   struct {
		UID  int    `json:"uid"`
		GID  int    `json:"gid"`
		PID  int    `json:"pid"`
		User string `json:"user"`
		Via  string `json:"via"`
		Addr string `json:"addr"`
	} `json:"actor"`
}

// consulEvent is Consul's api.UserEvent, as /v1/event/fire answers it.
type consulEvent struct {
	ID, Name      string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}

// curlAs runs curl as uid (and gid) and returns its standard output.
func curlAs(t *testing.T, uid uint32, args ...string) []byte {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl not found, and CI must make an HTTP request as another uid: %v", err)
		}
		t.Skipf("curl not found; it makes the HTTP request as another uid: %v", err)
	}
	cmd := exec.Command(p, append([]string{"-sS", "--fail-with-body", "--max-time", "30"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.Dir = "/"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s as uid %d: %v\n%s%s", strings.Join(args, " "), uid, err, out, stderr.String())
	}
	return out
}

// httpGet fetches url and returns its status and body.
func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// TestHTTPActor: the daemon serves HTTP on --http, status names the bound
// address, and a write over HTTP is recorded with the caller's uid as the
// kernel knows it: 65534 for curl run as nobody, 0 for root.
func TestHTTPActor(t *testing.T) {
	t.Parallel()
	requireRootForUsers(t)
	// Over TCP a caller outside the socket's group may only read, unless
	// the policy grants more: this one lets nobody fire events.
	policy := filepath.Join(t.TempDir(), "policy.cel")
	if err := os.WriteFile(policy, []byte("allow actor.uid == 65534 && verb == \"event fire\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, withFlags("--http", "127.0.0.1:0", "--policy", policy))
	addr := d.Status.HTTP
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("status http %q, want the bound address 127.0.0.1:PORT", addr)
	}
	base := "http://" + addr

	if code, body := httpGet(t, base+"/healthz"); code != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: %d %s, want 200 {\"status\":\"ok\"}", code, body)
	}
	code, body := httpGet(t, base+"/v1/status/leader")
	var leader string
	if err := json.Unmarshal(body, &leader); code != 200 || err != nil || leader != addr {
		t.Errorf("GET /v1/status/leader: %d %s, want 200 %q", code, body, addr)
	}

	fire := func(uid uint32, name, payload string) consulEvent {
		t.Helper()
		out := curlAs(t, uid, "-X", "PUT", "--data-binary", payload, base+"/v1/event/fire/"+name+"?node=web")
		var ev consulEvent
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatalf("PUT /v1/event/fire/%s answered %s: %v", name, out, err)
		}
		if ev.Name != name || string(ev.Payload) != payload || ev.ID == "" || ev.LTime == 0 || ev.Version != 1 || ev.NodeFilter != "web" {
			t.Fatalf("PUT /v1/event/fire/%s answered %+v", name, ev)
		}
		return ev
	}
	nobody := fire(65534, "deploy", "v42")
	root := fire(0, "rollback", "v41")

	evs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=event.fire"))
	if len(evs) != 2 {
		t.Fatalf("%d event.fire events, want 2: %+v", len(evs), evs)
	}
	for i, want := range []struct {
		ev  consulEvent
		uid int
	}{{nobody, 65534}, {root, 0}} {
		got := evs[i]
		if got.Seq != int64(want.ev.LTime) || got.Subject != want.ev.Name || got.Data["id"] != want.ev.ID || got.Data["payload"] != string(want.ev.Payload) || got.Data["node_filter"] != "web" {
			t.Errorf("event %d: %+v, want seq %d subject %q data id %q payload %q node_filter web", i, got, want.ev.LTime, want.ev.Name, want.ev.ID, want.ev.Payload)
		}
		a := got.Actor
		if a.UID != want.uid || a.Via != "http" || !strings.HasPrefix(a.Addr, "127.0.0.1:") || a.GID != -1 || a.PID != 0 {
			t.Errorf("event %d (%s): actor %+v, want uid %d via http from 127.0.0.1, gid -1, pid 0", i, got.Subject, a, want.uid)
		}
	}
	if evs[0].Actor.User != "nobody" {
		t.Errorf("actor of uid 65534 named %q, want nobody", evs[0].Actor.User)
	}
	d.Stop()
}

// TestHTTPWriteNeedsGroupOrGrant: a local user outside the socket's group
// may read over HTTP but not write; the refusal is a 403 naming what would
// allow it, and an auth.deny event records the caller's uid.
func TestHTTPWriteNeedsGroupOrGrant(t *testing.T) {
	t.Parallel()
	requireRootForUsers(t)
	d := startDaemon(t, withFlags("--http", "127.0.0.1:0"))
	base := "http://" + d.Status.HTTP
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("GET /healthz: %d", code)
	}
	p, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	cmd := exec.Command(p, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "x", base+"/v1/event/fire/deploy")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil || string(out) != "403" {
		t.Fatalf("PUT as uid 65534 without a grant: %s %v, want 403", out, err)
	}
	if evs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=event.fire")); len(evs) != 0 {
		t.Fatalf("a denied write was recorded: %+v", evs)
	}
	denials := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=auth.deny"))
	if len(denials) != 1 || denials[0].Actor.UID != 65534 || denials[0].Actor.Via != "http" || denials[0].Subject != "event fire" ||
		!strings.Contains(fmt.Sprint(denials[0].Data["reason"]), "--socket-group") {
		t.Fatalf("auth.deny events %+v, want one for uid 65534 via http naming what would allow it", denials)
	}
}

// TestHTTPBusyPort: a daemon whose --http address is taken does not start,
// and says which flag to change.
func TestHTTPBusyPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := newDaemon(t, withFlags("--http", ln.Addr().String()))
	d.launch()
	select {
	case <-d.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon kept running with its --http address taken")
	}
	if d.State.ExitCode() == 0 {
		t.Fatalf("daemon exited %v with its --http address taken, want a failure", d.State)
	}
	if log := d.Log(); !strings.Contains(log, "--http "+ln.Addr().String()) || !strings.Contains(log, "address already in use") {
		t.Fatalf("the daemon's message does not name --http and the address in use:\n%s", log)
	}
	if _, err := os.Lstat(d.Socket); err == nil {
		t.Errorf("socket %s left behind by a daemon that did not start", d.Socket)
	}
}

// TestHTTPOff: --http off opens no listener, and status says so.
func TestHTTPOff(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withFlags("--http", "off"))
	if d.Status.HTTP != "off" {
		t.Fatalf("status http %q with --http off, want off", d.Status.HTTP)
	}
	d.Stop()
}
