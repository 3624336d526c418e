package integration

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/consul/api"
)

// curlCode runs curl as uid and returns the HTTP status and body.
func curlCode(t *testing.T, uid uint32, args ...string) (string, string) {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	cmd := exec.Command(p, append([]string{"-sS", "-w", "\n%{http_code}", "--max-time", "30"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %v as uid %d: %v", args, uid, err)
	}
	i := strings.LastIndexByte(string(out), '\n')
	return string(out[i+1:]), string(out[:i])
}

// TestConsulNonRoot: a local user outside the socket's group reads
// Consul's API but cannot write it (403, an auth.deny event); a write's
// actor is the caller's uid from the kernel; a script check registered by
// a non-root caller (allowed by a policy rule) runs as that caller, not as
// root.
func TestConsulNonRoot(t *testing.T) {
	t.Parallel()
	requireRootForUsers(t)
	policy := filepath.Join(t.TempDir(), "policy.cel")
	if err := os.WriteFile(policy, []byte("allow actor.uid == 65534 && verb == \"service register\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, c := consulDaemon(t, withFlags("--policy", policy))
	base := "http://" + d.Status.HTTP
	if _, err := c.KV().Put(&api.KVPair{Key: "cfg/a", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}

	if code, body := curlCode(t, 65534, base+"/v1/kv/cfg/a?raw"); code != "200" || body != "1" {
		t.Fatalf("GET as nobody: %s %q, want 200 1", code, body)
	}
	if code, body := curlCode(t, 65534, base+"/v1/health/service/web"); code != "200" || strings.TrimSpace(body) != "[]" {
		t.Fatalf("health as nobody: %s %q", code, body)
	}
	for _, w := range [][]string{
		{"-X", "PUT", "--data-binary", "2", base + "/v1/kv/cfg/a"},
		{"-X", "DELETE", base + "/v1/kv/cfg/a"},
		{"-X", "PUT", "--data-binary", `[{"KV":{"Verb":"set","Key":"cfg/b","Value":"eA=="}}]`, base + "/v1/txn"},
		{"-X", "PUT", base + "/v1/session/create"},
	} {
		if code, body := curlCode(t, 65534, w...); code != "403" || !strings.Contains(body, "Permission denied") {
			t.Errorf("%v as nobody: %s %q, want 403 Permission denied", w, code, body)
		}
	}
	if p, _, _ := c.KV().Get("cfg/a", nil); p == nil || string(p.Value) != "1" {
		t.Fatalf("cfg/a after refused writes: %+v", p)
	}
	denials := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=auth.deny"))
	if len(denials) != 4 || denials[0].Actor.UID != 65534 || denials[0].Subject != "consul kv put" {
		t.Fatalf("auth.deny events: %+v", denials)
	}
	puts := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=consul_kv.set"))
	if len(puts) != 1 || puts[0].Actor.UID != os.Geteuid() || puts[0].Actor.Via != "http" || puts[0].Subject != "consul_kv/cfg/a" {
		t.Fatalf("consul_kv.set events: %+v", puts)
	}

	// nobody may register (the policy says so); its script check runs as
	// nobody.
	reg, _ := json.Marshal(api.AgentServiceRegistration{ID: "who", Name: "who",
		Check: &api.AgentServiceCheck{Args: []string{"/usr/bin/id", "-u"}, Interval: "1s"}})
	if code, body := curlCode(t, 65534, "-X", "PUT", "--data-binary", string(reg), base+"/v1/agent/service/register"); code != "200" {
		t.Fatalf("register as nobody with a grant: %s %q", code, body)
	}
	es := awaitHealth(t, c, "who", true, func(es []*api.ServiceEntry) bool { return len(es) == 1 })
	for _, chk := range es[0].Checks {
		if chk.CheckID == "service:who" && strings.TrimSpace(chk.Output) != "65534" {
			t.Fatalf("the script check of nobody ran as uid %q, want 65534", chk.Output)
		}
	}
	regs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=discovery.service.register"))
	if len(regs) != 1 || regs[0].Actor.UID != 65534 {
		t.Fatalf("registration events: %+v, want one by uid 65534", regs)
	}
}

// TestServiceVerbs: the DSL's service and check verbs over the state the
// HTTP API serves.
func TestServiceVerbs(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	out := cliOK(t, d, "-o", "json", "service", "register", "api", "id=api-1", "address=10.1.2.3", "port=8080", "tag=v2", "tag=blue", "check.ttl=1m")
	if !strings.Contains(out, `"id":"api-1"`) {
		t.Fatalf("service register: %s", out)
	}
	svcs, _, err := c.Catalog().Service("api", "blue", nil)
	if err != nil || len(svcs) != 1 || svcs[0].ServiceAddress != "10.1.2.3" || svcs[0].ServicePort != 8080 {
		t.Fatalf("catalog api tag blue: %+v %v", svcs, err)
	}
	if err := c.Agent().PassTTL("service:api-1", "fine"); err != nil {
		t.Fatal(err)
	}
	list := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "service", "list"))
	if len(list) != 1 || list[0]["name"] != "api" || list[0]["passing"] != float64(1) {
		t.Fatalf("service list: %v", list)
	}
	show := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "service", "show", "api"))
	if len(show) != 1 || show[0]["status"] != "passing" || show[0]["address"] != "10.1.2.3" {
		t.Fatalf("service show api: %v", show)
	}
	if h := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "health", "api", "passing")); len(h) != 1 {
		t.Fatalf("health api passing: %v", h)
	}
	if err := c.Agent().FailTTL("service:api-1", "down"); err != nil {
		t.Fatal(err)
	}
	if h := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "health", "api", "passing")); len(h) != 0 {
		t.Fatalf("health api passing after a fail: %v", h)
	}
	crit := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "check", "list", "state=critical"))
	if len(crit) != 1 || crit[0]["id"] != "service:api-1" || crit[0]["output"] != "down" {
		t.Fatalf("check list state=critical: %v", crit)
	}
	if _, stderr, code := cli(t, d, "check", "list", "state=sick"); code == 0 || !strings.Contains(stderr, "state") {
		t.Fatalf("check list state=sick: %d %s", code, stderr)
	}
	if _, stderr, code := cli(t, d, "service", "register", "x", "check.http=http://127.0.0.1:1/"); code == 0 || !strings.Contains(stderr, "Interval must be > 0") {
		t.Fatalf("an HTTP check without an interval: %d %s", code, stderr)
	}
	cliOK(t, d, "service", "deregister", "api-1")
	if _, stderr, code := cli(t, d, "service", "show", "api"); code == 0 || !strings.Contains(stderr, "no service named") {
		t.Fatalf("service show after deregister: %d %s", code, stderr)
	}
	who := cliOK(t, d, "audit", "who", "service/api")
	for _, want := range []string{"registered id=api-1", "check service:api-1 passing: fine", "check service:api-1 critical: down", "deregistered id=api-1", "via:socket", "via:http"} {
		if !strings.Contains(who, want) {
			t.Errorf("audit who service/api lacks %q:\n%s", want, who)
		}
	}
}

// TestConsulTokenBeyondLoopback: an --http bound beyond loopback makes
// <data>/http.token (0600); a caller from a non-loopback address is refused
// without it (Consul's 403 "ACL not found") and served with it in
// X-Consul-Token, through consul/api's Token; loopback callers are still
// known by their uid and need none.
func TestConsulTokenBeyondLoopback(t *testing.T) {
	t.Parallel()
	var outside string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
			outside = n.IP.String()
			break
		}
	}
	if outside == "" {
		t.Skip("no non-loopback IPv4 address on this machine to call from")
	}
	d := startDaemon(t, withFlags("--http", "0.0.0.0:0", "--dns", "127.0.0.1:0"))
	_, port, err := net.SplitHostPort(d.Status.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	tokPath := filepath.Join(d.Data, "http.token")
	fi, err := os.Stat(tokPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("http.token: %v %v, want mode 0600", fi, err)
	}
	tok, _ := os.ReadFile(tokPath)

	remote := "http://" + net.JoinHostPort(outside, port)
	if code, body := httpGet(t, remote+"/v1/kv/x"); code != 403 || !strings.Contains(string(body), "ACL not found") {
		t.Fatalf("GET from %s without the token: %d %s, want 403 ACL not found", outside, code, body)
	}
	cfg := api.DefaultConfig()
	cfg.Address = net.JoinHostPort(outside, port)
	cfg.Token = strings.TrimSpace(string(tok))
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.KV().Get("x", nil); err != nil {
		t.Fatalf("GET from %s with the token: %v", outside, err)
	}
	// A write from elsewhere, token or not, needs a policy rule: the
	// caller has no local uid.
	if _, err := c.KV().Put(&api.KVPair{Key: "x", Value: []byte("1")}, nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("PUT from %s: %v, want 403", outside, err)
	}
	if code, _ := httpGet(t, "http://127.0.0.1:"+port+"/v1/kv/x"); code != 404 {
		t.Fatalf("GET from loopback without a token: %d, want 404 (served)", code)
	}
}

// httpDo sends one request and returns its status and body.
func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsulBadInput: malformed and unknown input answers Consul's codes
// and texts and the daemon keeps serving; Consul's documented spellings
// (snake_case, Args) are accepted.
func TestConsulBadInput(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	base := "http://" + d.Status.HTTP
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"PUT", "/v1/agent/service/register", `{"Name": "x",`, 400, "Request decode failed"},
		{"PUT", "/v1/agent/service/register", `{"Name": "x", "Bogus": 1}`, 400, "unknown field"},
		{"PUT", "/v1/agent/service/register", `{"Name": "x", "Check": {"HTTP": "http://127.0.0.1:1/"}}`, 400, "Interval must be > 0"},
		{"PUT", "/v1/agent/service/register", `{"Name": "x", "Check": {"TTL": "0s"}}`, 400, "TTL must be > 0"},
		{"PUT", "/v1/agent/service/register", `{"Name": "x", "Check": {"GRPC": "127.0.0.1:1", "Interval": "1s"}}`, 400, "only TTL, HTTP, TCP and script"},
		{"PUT", "/v1/agent/check/register", `{"Name": "c", "TTL": "10s", "ServiceID": "nope"}`, 400, `ServiceID "nope" does not exist`},
		{"PUT", "/v1/agent/check/pass/nope", ``, 404, "Unknown check ID"},
		{"PUT", "/v1/txn", `[{"KV": {"Verb": "set", "Key": "k", "Value": "eA=="}}, {"Node": {}}]`, 400, "only KV operations"},
		{"PUT", "/v1/txn", `not json`, 400, "Request decode failed"},
		{"GET", "/v1/kv/x?index=abc", ``, 400, "Invalid index"},
		{"GET", "/v1/kv/x?index=1&wait=soon", ``, 400, "Invalid wait time"},
		{"GET", "/v1/health/state/sick", ``, 400, "Invalid check state"},
		{"PUT", "/v1/kv/big", strings.Repeat("x", 600<<10), 413, "too large"},
		{"PUT", "/v1/kv/f?flags=-1", "v", 400, "Invalid flags"},
		{"PUT", "/v1/session/create", `{"TTL": "1s"}`, 400, "Invalid Session TTL"},
		{"PUT", "/v1/session/create", `{"Checks": ["nope"]}`, 400, "Missing check 'nope' registration"},
	} {
		code, body := httpDo(t, tc.method, base+tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %.40q: %d %q, want %d %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
	// Consul's documented spellings: snake_case fields, Args.
	code, body := httpDo(t, "PUT", base+"/v1/agent/service/register",
		`{"name": "s", "id": "s-1", "port": 1, "meta": {"team_name": "x"}, "check": {"args": ["/bin/true"], "interval": "1s", "deregister_critical_service_after": "1h", "tls_skip_verify": true}}`)
	if code != 200 {
		t.Fatalf("snake_case registration: %d %s", code, body)
	}
	svc, _, err := c.Agent().Service("s-1", nil)
	if err != nil || svc.Meta["team_name"] != "x" {
		t.Fatalf("the snake_case service: %+v %v", svc, err)
	}
	checks, err := c.Agent().Checks()
	if err != nil || checks["service:s-1"] == nil || checks["service:s-1"].Type != "script" {
		t.Fatalf("the snake_case script check: %+v %v", checks, err)
	}
	if st := d.requireServing(); st.Listeners["http"] != d.Status.HTTP {
		t.Fatalf("after bad input: %+v", st)
	}
}
