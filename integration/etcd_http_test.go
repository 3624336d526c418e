package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestEtcdHTTPEndpoints: etcd's HTTP side on the etcd port, as an etcd
// user reaches it with curl (issue 12, item 3): /health, /version,
// /metrics with counters that move, and the JSON gateway (put, range, a
// watch stream) whose writes are judged as gRPC ones are.
func TestEtcdHTTPEndpoints(t *testing.T) {
	requireRootForUsers(t)
	t.Parallel()
	bin := etcdctlBin(t)
	d, addr := startEtcdDaemon(t)
	base := "http://" + addr

	if got := string(curlAs(t, 0, base+"/health")); strings.TrimSpace(got) != `{"health":"true","reason":""}` {
		t.Errorf("/health = %q", got)
	}
	var ver struct{ Etcdserver, Etcdcluster string }
	if err := json.Unmarshal(curlAs(t, 0, base+"/version"), &ver); err != nil || ver.Etcdserver != "3.6.6" || ver.Etcdcluster != "3.6.0" {
		t.Errorf("/version = %+v %v", ver, err)
	}
	puts := func() float64 {
		t.Helper()
		// prometheus/common v0.66 (required by consul/api's go-metrics)
		// wants the name validation scheme said; etcd's names are legacy.
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(curlAs(t, 0, base+"/metrics")))
		if err != nil {
			t.Fatalf("/metrics is not Prometheus text: %v", err)
		}
		for _, name := range []string{"etcd_server_has_leader", "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_range_total"} {
			if fams[name] == nil {
				t.Errorf("/metrics lacks %s", name)
			}
		}
		f := fams["etcd_mvcc_put_total"]
		if f == nil || len(f.Metric) != 1 {
			t.Fatalf("/metrics lacks etcd_mvcc_put_total")
		}
		return f.Metric[0].GetCounter().GetValue()
	}
	before := puts()

	// The gateway, as etcd's documentation uses it: keys and values in base64.
	curlAs(t, 0, "-X", "POST", base+"/v3/kv/put", "-d", `{"key":"Zm9v","value":"YmFy"}`) // foo=bar
	var rng struct {
		Kvs []struct{ Key, Value string }
	}
	if err := json.Unmarshal(curlAs(t, 0, "-X", "POST", base+"/v3/kv/range", "-d", `{"key":"Zm9v"}`), &rng); err != nil || len(rng.Kvs) != 1 || rng.Kvs[0].Value != "YmFy" {
		t.Fatalf("/v3/kv/range = %+v %v", rng, err)
	}
	if out := etcdctlOK(t, bin, addr, "", "get", "foo", "--print-value-only"); strings.TrimSpace(out) != "bar" {
		t.Fatalf("etcdctl get foo after a gateway put = %q", out)
	}
	if after := puts(); after != before+1 {
		t.Errorf("etcd_mvcc_put_total went from %v to %v over one put", before, after)
	}
	etcdctlOK(t, bin, addr, "", "endpoint", "health")

	// A watch over the gateway: created, then the event of a put.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := exec.CommandContext(ctx, "curl", "-sS", "-N", "-X", "POST", base+"/v3/watch", "-d", `{"create_request":{"key":"Zm9v"}}`)
	out, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { w.Process.Kill(); w.Wait() }()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"created":true`) {
		t.Fatalf("watch: first line %q, want created", lines.Text())
	}
	curlAs(t, 0, "-X", "POST", base+"/v3/kv/put", "-d", `{"key":"Zm9v","value":"YmF6"}`) // foo=baz
	if !lines.Scan() || !strings.Contains(lines.Text(), `"value":"YmF6"`) {
		t.Fatalf("watch: %q, want the put's event", lines.Text())
	}

	// A uid outside the socket's group reads through the gateway but may
	// not write, as over gRPC; the refusal is journaled.
	curlAs(t, testUID, "-X", "POST", base+"/v3/kv/range", "-d", `{"key":"Zm9v"}`)
	cmd := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", base+"/v3/kv/put", "-d", `{"key":"Zm9v","value":"ZXZpbA=="}`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testUID, Gid: testGID}}
	cmd.Dir = "/"
	if code, err := cmd.Output(); err != nil || string(code) != "403" {
		t.Fatalf("gateway put as uid %d: %s %v, want 403", testUID, code, err)
	}
	if out := etcdctlOK(t, bin, addr, "", "get", "foo", "--print-value-only"); strings.TrimSpace(out) != "baz" {
		t.Fatalf("the refused gateway put changed the key: %q", out)
	}
	denials := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=auth.deny"))
	if len(denials) != 1 || denials[0].Actor.UID != testUID || denials[0].Actor.Via != "etcd" {
		t.Fatalf("auth.deny events %+v, want one for uid %d via etcd", denials, testUID)
	}
	kvPuts := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=kv.put"))
	if len(kvPuts) != 2 || kvPuts[0].Actor.UID != 0 || kvPuts[0].Actor.Via != "etcd" {
		t.Fatalf("kv.put events %+v, want root's two via etcd", kvPuts)
	}
}
