package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// awaitHealth runs blocking queries on /v1/health/service/NAME until ok
// holds for the instances (passing only when passing), at most a minute:
// each query returns when the catalog changes, so the test waits on the
// daemon's events, not on a clock.
func awaitHealth(t *testing.T, c *api.Client, name string, passing bool, ok func([]*api.ServiceEntry) bool) []*api.ServiceEntry {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var idx uint64
	for {
		es, meta, err := c.Health().Service(name, "", passing, &api.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second})
		if err != nil {
			t.Fatalf("health %s: %v", name, err)
		}
		if ok(es) {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %s (passing %v): still %s after a minute", name, passing, entriesString(es))
		}
		idx = meta.LastIndex
	}
}

func entriesString(es []*api.ServiceEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "[%s", e.Service.ID)
		for _, c := range e.Checks {
			fmt.Fprintf(&b, " %s=%s", c.CheckID, c.Status)
		}
		b.WriteString("]")
	}
	return b.String()
}

func ids(es []*api.ServiceEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Service.ID)
	}
	slices.Sort(out)
	return out
}

// dig runs dig against the daemon's DNS and returns its output.
func dig(t *testing.T, d *daemonProc, args ...string) string {
	t.Helper()
	p, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dig not found (Debian bind9-dnsutils, installed by .ci/run): %v", err)
		}
		t.Skipf("dig not found (Debian bind9-dnsutils): %v", err)
	}
	host, port, err := net.SplitHostPort(d.Status.Listeners["dns"])
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p, append([]string{"@" + host, "-p", port, "+time=5", "+tries=1"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// srvPorts are the ports of the SRV answers in dig +short output.
func srvPorts(out string) []int {
	var ports []int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 {
			if p, err := strconv.Atoi(f[2]); err == nil {
				ports = append(ports, p)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// TestConsulHealthChecks: services registered through consul/api with an
// HTTP check against a server the test runs, a TCP check and a TTL check.
// Stopping the server makes its check critical, ?passing and DNS drop the
// instance; the TTL check expires; state changes alone are events, with
// their actors in `audit who service/web`; checks survive a restart and
// resume probing.
func TestConsulHealthChecks(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	agent := c.Agent()

	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	defer web.Close()
	webPort := web.Listener.Addr().(*net.TCPAddr).Port
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tcpPort := tcp.Addr().(*net.TCPAddr).Port

	if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: webPort, Address: "127.0.0.1", Tags: []string{"v1"},
		Check: &api.AgentServiceCheck{HTTP: web.URL + "/health", Interval: "1s", Timeout: "2s"}}); err != nil {
		t.Fatal(err)
	}
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: "web-2", Name: "web", Port: tcpPort, Address: "127.0.0.1",
		Check: &api.AgentServiceCheck{TCP: tcp.Addr().String(), Interval: "1s"}}); err != nil {
		t.Fatal(err)
	}
	// Bad registrations answer Consul's errors.
	for _, bad := range []*api.AgentServiceRegistration{
		{Name: "x", Check: &api.AgentServiceCheck{HTTP: web.URL}},
		{Name: "x", Check: &api.AgentServiceCheck{TTL: "0s"}},
		{Name: ""},
	} {
		if err := agent.ServiceRegister(bad); err == nil || !strings.Contains(err.Error(), "400") {
			t.Errorf("register %+v: %v, want a 400", bad, err)
		}
	}

	es := awaitHealth(t, c, "web", true, func(es []*api.ServiceEntry) bool { return len(es) == 2 })
	if got := ids(es); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Fatalf("passing web: %v", got)
	}
	if ports := srvPorts(dig(t, d, "web.service.consul", "SRV", "+short")); !slices.Equal(ports, sortedInts(webPort, tcpPort)) {
		t.Fatalf("SRV web.service.consul: ports %v, want %v", ports, sortedInts(webPort, tcpPort))
	}
	if out := dig(t, d, "v1.web.service.consul", "SRV", "+short"); !slices.Equal(srvPorts(out), []int{webPort}) {
		t.Fatalf("SRV v1.web.service.consul: %s", out)
	}
	if out := strings.TrimSpace(dig(t, d, "web.service.consul", "A", "+short")); out != "127.0.0.1\n127.0.0.1" {
		t.Fatalf("A web.service.consul: %q", out)
	}

	// The server stops: its check goes critical, ?passing and DNS drop it.
	web.Close()
	es = awaitHealth(t, c, "web", true, func(es []*api.ServiceEntry) bool { return len(es) == 1 })
	if got := ids(es); !slices.Equal(got, []string{"web-2"}) {
		t.Fatalf("passing web after the server stopped: %v", got)
	}
	all, _, err := c.Health().Service("web", "", false, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("all web instances: %v %v", entriesString(all), err)
	}
	if ports := srvPorts(dig(t, d, "web.service.consul", "SRV", "+short")); !slices.Equal(ports, []int{tcpPort}) {
		t.Fatalf("SRV after web-1 went critical: %v, want [%d]", ports, tcpPort)
	}
	critical, _, err := c.Health().State("critical", nil)
	if err != nil || len(critical) != 1 || critical[0].CheckID != "service:web-1" {
		t.Fatalf("health state critical: %+v %v", critical, err)
	}

	// A TTL check: passing while updated, critical once its TTL passes.
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: "cron-1", Name: "cron", Check: &api.AgentServiceCheck{TTL: "1s"}}); err != nil {
		t.Fatal(err)
	}
	if err := agent.UpdateTTL("service:cron-1", "alive", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	if es, _, _ := c.Health().Service("cron", "", true, nil); len(es) != 1 {
		t.Fatalf("cron after a TTL pass: %s", entriesString(es))
	}
	awaitHealth(t, c, "cron", false, func(es []*api.ServiceEntry) bool {
		return len(es) == 1 && es[0].Checks.AggregatedStatus() == api.HealthCritical
	})
	checks, _, err := c.Health().Checks("cron", nil)
	if err != nil || len(checks) != 1 || checks[0].Output != "TTL expired" {
		t.Fatalf("cron's check after its TTL: %+v %v", checks, err)
	}

	// Only state changes are events: web-1 went critical once, however
	// often it was probed.
	evs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=discovery.check", "subject=service/web"))
	if len(evs) != 3 {
		t.Fatalf("discovery.check events of web: %+v, want 3 (web-1 and web-2 pass, web-1 critical)", evs)
	}
	last := evs[2]
	if last.Data["id"] != "service:web-1" || last.Data["from"] != "passing" || last.Data["to"] != "critical" || last.Actor.Via != "system" {
		t.Fatalf("web-1's last transition: %+v", last)
	}
	who := cliOK(t, d, "audit", "who", "service/web")
	for _, want := range []string{"discovery.service.register", "discovery.check", "check service:web-1 passing", "check service:web-1 critical"} {
		if !strings.Contains(who, want) {
			t.Errorf("audit who service/web lacks %q:\n%s", want, who)
		}
	}
	regs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=discovery.service.register", "subject=service/web"))
	if len(regs) != 2 || regs[0].Actor.UID != os.Geteuid() || regs[0].Actor.Via != "http" {
		t.Fatalf("registrations of web: %+v, want 2 by uid %d via http", regs, os.Geteuid())
	}

	// A restart: the checks keep their states and resume probing.
	d.Stop()
	d.Restart()
	c = consulClient(t, d)
	es = awaitHealth(t, c, "web", false, func(es []*api.ServiceEntry) bool { return len(es) == 2 })
	if s := entriesString(es); !strings.Contains(s, "service:web-1=critical") || !strings.Contains(s, "service:web-2=passing") {
		t.Fatalf("after a restart: %s", s)
	}
	tcp.Close()
	awaitHealth(t, c, "web", true, func(es []*api.ServiceEntry) bool { return len(es) == 0 })
	rows := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "check", "list", "state=critical"))
	if len(rows) != 3 {
		t.Fatalf("check list state=critical after the TCP listener closed: %v", rows)
	}

	// Deregistration removes the instance and its checks.
	if err := agent.ServiceDeregister("web-1"); err == nil {
		t.Log("deregistered through the old client") // the old client points at the old port
	}
	if err := c.Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().ServiceDeregister("nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("deregister an unknown id: %v, want a 404", err)
	}
	svcs, _, err := c.Catalog().Service("web", "", nil)
	if err != nil || len(svcs) != 1 || svcs[0].ServiceID != "web-2" {
		t.Fatalf("catalog web after deregistering web-1: %+v %v", svcs, err)
	}
}

func sortedInts(xs ...int) []int {
	slices.Sort(xs)
	return xs
}

// TestConsulDNS: dig answers A and SRV records of passing instances,
// retries over TCP when 50 instances do not fit a UDP answer, answers a
// node name, and NXDOMAIN with the SOA for unknown names.
func TestConsulDNS(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	for i := 0; i < 50; i++ {
		if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: fmt.Sprintf("api-%d", i), Name: "api", Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 9000 + i}); err != nil {
			t.Fatal(err)
		}
	}
	out := dig(t, d, "api.service.consul", "SRV")
	if !strings.Contains(out, "Truncated, retrying in TCP mode") {
		t.Errorf("50 SRV records answered without truncation over UDP:\n%s", out)
	}
	if !strings.Contains(out, "ANSWER: 50") || !strings.Contains(out, "status: NOERROR") {
		t.Fatalf("SRV api.service.consul:\n%s", out)
	}
	if out := dig(t, d, "_api._tcp.service.consul", "SRV", "+short", "+tcp"); len(srvPorts(out)) != 50 {
		t.Fatalf("RFC 2782 SRV: %s", out)
	}
	a := strings.Fields(dig(t, d, "api.service.consul", "A", "+short", "+tcp"))
	if len(a) != 50 || !slices.Contains(a, "10.0.0.1") || !slices.Contains(a, "10.0.0.50") {
		t.Fatalf("A api.service.consul: %v", a)
	}
	out = dig(t, d, "nope.service.consul", "A")
	if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "AUTHORITY: 1") || !strings.Contains(out, "SOA") {
		t.Fatalf("unknown name:\n%s", out)
	}
	node := d.Status.Node
	if out := strings.TrimSpace(dig(t, d, node+".node.consul", "A", "+short")); out != "127.0.0.1" {
		t.Fatalf("A %s.node.consul: %q", node, out)
	}
}

// TestConsulDeregisterCritical: an instance whose check stays critical
// longer than DeregisterCriticalServiceAfter is deregistered by cairn,
// the event saying why, its actor the system.
func TestConsulDeregisterCritical(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "job-1", Name: "job",
		Check: &api.AgentServiceCheck{TTL: "1s", DeregisterCriticalServiceAfter: "1s"}}); err != nil {
		t.Fatal(err)
	}
	var idx uint64
	deadline := time.Now().Add(time.Minute)
	for {
		svcs, meta, err := c.Catalog().Service("job", "", &api.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job-1 still registered after a minute of a critical check")
		}
		idx = meta.LastIndex
	}
	evs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=discovery.service.deregister"))
	if len(evs) != 1 || evs[0].Actor.Via != "system" || !strings.Contains(fmt.Sprint(evs[0].Data["reason"]), "critical for more than 1s") {
		t.Fatalf("deregister events: %+v", evs)
	}
	if checks, _ := c.Agent().Checks(); len(checks) != 0 {
		t.Fatalf("checks left after the deregistration: %v", checks)
	}
}
