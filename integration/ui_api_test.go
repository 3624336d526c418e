package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUIAPI drives the dashboard's JSON endpoints on the real daemon: the
// bucketed timeline counts what the test wrote, a filter narrows it and a
// bad one answers its place, an event's detail shows a KV put's before →
// after and its chain link, the live stream delivers an event written
// after it began, and /ui/api/run reads but refuses a write.
func TestUIAPI(t *testing.T) {
	d := startDaemon(t)
	base := "http://" + d.Status.HTTP
	c := dial(t, d)
	do(t, c, "kv put ui/color red")
	do(t, c, "kv put ui/color blue")
	emit(t, c, "emit app.note ui x=1")

	var tl struct {
		Streams []struct {
			Name   string
			Total  int64
			Kinds  map[string][]int64
			Counts []int64
		}
		Events []struct {
			Stream, Kind, Subject string
			Seq                   int64
		}
	}
	getJSON(t, base+"/ui/api/timeline?since=10m&buckets=10&limit=50", 200, &tl)
	audit := tl.Streams[0]
	if audit.Name != "audit" || sum(audit.Kinds["kv.put"]) != 2 || sum(audit.Kinds["app.note"]) != 1 || len(audit.Counts) != 10 {
		t.Fatalf("audit counts %+v, want 2 kv.put and 1 app.note in 10 buckets", audit)
	}
	if tl.Events[0].Kind != "app.note" || tl.Events[1].Kind != "kv.put" {
		t.Fatalf("newest events %+v, want app.note then kv.put", tl.Events[:2])
	}
	putSeq := tl.Events[1].Seq

	getJSON(t, base+"/ui/api/timeline?since=10m&where="+url.QueryEscape(`kind == "kv.put"`), 200, &tl)
	if tl.Streams[0].Total != 2 || len(tl.Events) != 2 {
		t.Fatalf("filtered: total %d, %d events; want the 2 puts", tl.Streams[0].Total, len(tl.Events))
	}
	var bad struct {
		Error, Param string
		Line, Col    int
	}
	getJSON(t, base+"/ui/api/timeline?where="+url.QueryEscape(`kind == `), 400, &bad)
	if bad.Param != "where" || bad.Line != 1 || bad.Col != 8 || !strings.Contains(bad.Error, "where") {
		t.Fatalf("bad filter answered %+v, want where at 1:8", bad)
	}

	var det struct {
		Summary string
		Changes []struct {
			Subject       string
			Before, After *string
		}
		Chain struct {
			HashOK bool  `json:"hash_ok"`
			PrevOK *bool `json:"prev_ok"`
		}
	}
	getJSON(t, base+"/ui/api/event?stream=audit&seq="+strconv.FormatInt(putSeq, 10), 200, &det)
	if len(det.Changes) != 1 || det.Changes[0].Subject != "ui/color" || det.Changes[0].Before == nil || *det.Changes[0].Before != "red" || *det.Changes[0].After != "blue" {
		t.Fatalf("detail %+v, want ui/color red → blue", det)
	}
	if !det.Chain.HashOK || det.Chain.PrevOK == nil || !*det.Chain.PrevOK {
		t.Fatalf("chain %+v, want both links good", det.Chain)
	}
	var ver struct {
		OK     bool
		Events int64
	}
	getJSON(t, base+"/ui/api/verify?stream=audit", 200, &ver)
	if !ver.OK || ver.Events < 4 {
		t.Fatalf("verify %+v", ver)
	}
	getJSON(t, base+"/ui/api/event?stream=audit&seq=999999", 404, &bad)

	// Live: subscribe, then write, and the event arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/ui/api/live?streams=audit&where="+url.QueryEscape(`kind == "kv.put"`), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("live content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (event, data string) {
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && event != "":
				return event, data
			}
		}
		t.Fatalf("live stream ended: %v", sc.Err())
		return
	}
	if ev, _ := next(); ev != "ready" {
		t.Fatalf("first live message %q, want ready", ev)
	}
	emit(t, c, "emit app.note skipped")
	do(t, c, "kv put ui/live yes")
	ev, data := next()
	var got struct{ Kind, Subject string }
	json.Unmarshal([]byte(data), &got)
	if ev != "ev" || got.Kind != "kv.put" || got.Subject != "ui/live" {
		t.Fatalf("live: %s %s, want the kv.put of ui/live", ev, data)
	}

	var ans struct {
		Rows []struct{ Key, Value string }
	}
	getJSON(t, base+"/ui/api/run?q="+url.QueryEscape("kv get ui/color"), 200, &ans)
	if len(ans.Rows) != 1 || ans.Rows[0].Value != "blue" {
		t.Fatalf("run kv get: %+v", ans)
	}
	getJSON(t, base+"/ui/api/run?q="+url.QueryEscape("kv put ui/color green"), 403, &bad)
	getJSON(t, base+"/ui/api/run?q="+url.QueryEscape("nosuchverb x"), 404, &bad)
	if bad.Line != 1 || bad.Col != 1 {
		t.Fatalf("unknown verb answered %+v, want its place", bad)
	}

	// A name other than localhost, as a rebound DNS name would be, is
	// refused; localhost is served.
	for host, want := range map[string]int{"evil.example:80": 403, "localhost:" + strings.Split(d.Status.HTTP, ":")[1]: 200} {
		req, _ := http.NewRequest("GET", base+"/ui/api/info", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}

	code, body := httpGet(t, base+"/ui/")
	if code != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("/ui/: %d %.200s", code, body)
	}

	// A stop ends the live streams at once: the HTTP server's drain does
	// not wait its whole timeout for a browser left open.
	d.Stop()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("the live stream after the stop: %v, want its end", err)
	}
	if log := d.Log(); strings.Contains(log, "still running after the drain timeout") {
		t.Errorf("the stop waited for the live stream:\n%s", log)
	}
}

func getJSON(t *testing.T, u string, status int, v any) {
	t.Helper()
	code, body := httpGet(t, u)
	if code != status {
		t.Fatalf("GET %s: %d %s, want %d", u, code, body, status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

func sum(xs []int64) (n int64) {
	for _, x := range xs {
		n += x
	}
	return n
}

// TestUIAccess: the dashboard's endpoints follow the listener's rule, the
// caller found through the kernel and the daemon's policy asked as for a
// statement: a rule that denies nobody (uid 65534) events denies it the
// timeline, an event's detail and the live stream (403, journaled as
// auth.deny), and a statement run over HTTP is decided by its own verb.
func TestUIAccess(t *testing.T) {
	requireRootForUsers(t)
	policy := filepath.Join(t.TempDir(), "policy.cel")
	if err := os.WriteFile(policy, []byte("deny actor.uid == 65534 && (verb == \"events\" || verb == \"tail\" || verb == \"kv get\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, withFlags("--policy", policy))
	base := "http://" + d.Status.HTTP
	c := dial(t, d)
	do(t, c, "kv put ui/secret s3")
	for _, path := range []string{"/ui/api/timeline", "/ui/api/event?stream=audit&seq=1", "/ui/api/live", "/ui/api/run?q=" + url.QueryEscape("kv get ui/secret")} {
		out := curlStatusAs(t, 65534, base+path)
		if !strings.HasPrefix(out, "403") {
			t.Errorf("GET %s as nobody: %s, want 403", path, out)
		}
	}
	// Root reads it all; nobody still reads what the policy leaves open.
	if out := curlStatusAs(t, 0, base+"/ui/api/timeline"); !strings.HasPrefix(out, "200") {
		t.Errorf("timeline as root: %s", out)
	}
	if out := curlStatusAs(t, 65534, base+"/ui/api/info"); !strings.HasPrefix(out, "200") {
		t.Errorf("info as nobody: %s", out)
	}
	denials := events(t, c, "events kind=auth.deny")
	if len(denials) < 4 {
		t.Fatalf("%d auth.deny events, want one per refused request", len(denials))
	}
}

// curlStatusAs fetches url as uid (curl run with that uid, so the kernel
// names it as the caller) and answers the HTTP status.
func curlStatusAs(t *testing.T, uid uint32, u string) string {
	t.Helper()
	cmd := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", u)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s as uid %d: %v %s", u, uid, err, out)
	}
	return string(out)
}

// TestUIInfraGraphStates: the infra graph colours a resource the last
// apply failed to create as failed, and one that was created as in sync.
func TestUIInfraGraphStates(t *testing.T) {
	d := startDaemon(t)
	base := "http://" + d.Status.HTTP
	c := dial(t, d)
	cfg := t.TempDir()
	hcl := fmt.Sprintf(`resource "directory" "ok" {
  path = %q
}
resource "file" "bad" {
  path    = "/proc/cairn-ui-test/nope.txt"
  content = "cannot be written"
}
`, filepath.Join(cfg, "out"))
	if err := os.WriteFile(filepath.Join(cfg, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Do(ctx, fmt.Sprintf("infra apply %s workspace=broken auto-approve", cfg)); err == nil {
		t.Fatal("an apply writing under /proc succeeded")
	}
	code, svg := httpGet(t, base+"/ui/api/infra/graph.svg?workspace=broken")
	if code != 200 {
		t.Fatalf("graph: %d %s", code, svg)
	}
	for _, want := range []string{`id="res-directory.ok"`, `id="res-file.bad"`} {
		if !strings.Contains(string(svg), want) {
			t.Fatalf("graph lacks %s:\n%s", want, svg)
		}
	}
	// Each node's group carries its state as a class.
	if !regexp.MustCompile(`id="res-directory\.ok" class="[^"]*state-in_sync`).Match(svg) || !regexp.MustCompile(`id="res-file\.bad" class="[^"]*state-failed`).Match(svg) {
		t.Fatalf("states wrong in:\n%s", svg)
	}
}
