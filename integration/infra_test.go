package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// infraNS creates a network namespace for one test and deletes it after.
func infraNS(t *testing.T) (ip, ns string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces; CI runs as root")
	}
	ip = requireIP(t)
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		t.Fatal(err)
	}
	ns = "cairn-infra-" + hex.EncodeToString(rb[:])
	runIP(t, ip, "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	return ip, ns
}

// ipJSON runs ip -n NS -j ARGS… and decodes its answer.
func ipJSON(t *testing.T, ip, ns string, args ...string) []map[string]any {
	t.Helper()
	out, err := exec.Command(ip, append([]string{"-n", ns, "-j"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ip -n %s -j %s: %v", ns, strings.Join(args, " "), err)
	}
	var v []map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ip -j %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// links answers ifname -> "mtu master operstate-flags" as ip sees them.
func links(t *testing.T, ip, ns string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, l := range ipJSON(t, ip, ns, "link", "show") {
		out[l["ifname"].(string)] = l
	}
	return out
}

func addrsOf(t *testing.T, ip, ns, dev string) []string {
	var out []string
	for _, l := range ipJSON(t, ip, ns, "addr", "show", "dev", dev) {
		for _, a := range l["addr_info"].([]any) {
			m := a.(map[string]any)
			if m["family"] == "inet" {
				out = append(out, fmt.Sprintf("%s/%v", m["local"], m["prefixlen"]))
			}
		}
	}
	sort.Strings(out)
	return out
}

func hostLinks(t *testing.T, ip string) string {
	out, err := exec.Command(ip, "-j", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v []map[string]any
	json.Unmarshal(out, &v)
	var names []string
	for _, l := range v {
		names = append(names, l["ifname"].(string))
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// labConfig is the acceptance configuration: a bridge with mtu 1400, veth
// pairs enslaved to it, an address and a route, in namespace var.ns.
func labConfig(veths int, bridgeMTU int, extraAddr bool, gateway string) string {
	extra := ""
	if extraAddr {
		extra = `
resource "net_address" "second" {
  namespace = var.ns
  link      = net_link.br0.name
  cidr      = "10.77.0.2/24"
}`
	}
	return fmt.Sprintf(`
variable "ns" {}

resource "net_link" "br0" {
  namespace = var.ns
  name      = "br0"
  kind      = "bridge"
  mtu       = %d
  lifecycle {
    prevent_destroy = %t
  }
}

resource "net_link" "veth" {
  count     = %d
  namespace = var.ns
  name      = "veth${count.index}"
  kind      = "veth"
  peer_name = "peer${count.index}"
  master    = net_link.br0.name
}

resource "net_address" "gw" {
  namespace = var.ns
  link      = net_link.br0.name
  cidr      = "10.77.0.1/24"
}
%s
resource "net_route" "far" {
  namespace   = var.ns
  destination = "10.78.0.0/16"
  gateway     = %q
  depends_on  = [net_address.gw]
}

output "bridge" {
  value = net_link.br0.id
}
`, bridgeMTU, false, veths, extra, gateway)
}

func writeHCL(t *testing.T, dir, src string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

type infraPlanRow struct {
	ID      int64 `json:"id"`
	Add     int   `json:"add"`
	Change  int   `json:"change"`
	Destroy int   `json:"destroy"`
	Changes []struct {
		Addr   string `json:"addr"`
		Action string `json:"action"`
	} `json:"changes"`
}

func planJSON(t *testing.T, d *daemonProc, args ...string) (infraPlanRow, string) {
	t.Helper()
	out, text, code := cli(t, d, append([]string{"-o", "json", "infra", "plan"}, args...)...)
	if code != 0 {
		t.Fatalf("infra plan %v: exit %d\n%s\n%s", args, code, out, text)
	}
	rows := parseNDJSON[infraPlanRow](t, out)
	if len(rows) != 1 {
		t.Fatalf("infra plan answered %d rows:\n%s", len(rows), out)
	}
	return rows[0], text
}

func actions(p infraPlanRow) string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Action+" "+c.Addr)
	}
	return strings.Join(out, ", ")
}

// TestInfraNetAcceptance walks issue 6's acceptance: first plan, apply,
// checked with ip -j, an empty second plan; edits giving ~ + -; drift by
// hand within a second, repaired by apply, none from cairn's own applies;
// state from history; nothing in the host namespace.
func TestInfraNetAcceptance(t *testing.T) {
	ip, ns := infraNS(t)
	hostBefore := hostLinks(t, ip)
	d := startDaemon(t)
	dir := filepath.Join(t.TempDir(), "lab")
	vns := "var.ns=" + ns

	writeHCL(t, dir, labConfig(2, 1400, false, "10.77.0.254"))
	out := cliOK(t, d, "infra", "plan", dir, vns)
	for _, want := range []string{"Plan: 5 to add, 0 to change, 0 to destroy.", `+ resource "net_link" "br0"`, "+ mtu           = 1400", "(known after apply)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("first plan lacks %q:\n%s", want, out)
		}
	}
	if got := links(t, ip, ns); len(got) != 1 {
		t.Fatalf("plan changed the namespace: %v", got)
	}
	out = cliOK(t, d, "infra", "apply", dir, vns, "auto-approve")
	if !strings.Contains(out, "Apply complete! Resources: 5 added, 0 changed, 0 destroyed.") {
		t.Fatalf("apply:\n%s", out)
	}
	applySeq := lastSeq(t, d)

	ls := links(t, ip, ns)
	if br := ls["br0"]; br == nil || br["mtu"].(float64) != 1400 {
		t.Fatalf("br0 as ip sees it: %v", ls["br0"])
	}
	for _, v := range []string{"veth0", "veth1"} {
		l := ls[v]
		if l == nil || l["master"] != "br0" || l["link"] != fmt.Sprint("peer", v[4:]) {
			t.Fatalf("%s as ip sees it: %v", v, l)
		}
		if !strings.Contains(fmt.Sprint(l["flags"]), "UP") {
			t.Fatalf("%s is not up: %v", v, l["flags"])
		}
	}
	if got := addrsOf(t, ip, ns, "br0"); strings.Join(got, " ") != "10.77.0.1/24" {
		t.Fatalf("br0 addresses: %v", got)
	}
	routes := ipJSON(t, ip, ns, "route", "show", "10.78.0.0/16")
	if len(routes) != 1 || routes[0]["gateway"] != "10.77.0.254" || routes[0]["dev"] != "br0" {
		t.Fatalf("route: %v", routes)
	}
	p, _ := planJSON(t, d, dir, vns)
	if p.Add+p.Change+p.Destroy != 0 {
		t.Fatalf("second plan not empty: %s", actions(p))
	}
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "No changes.") {
		t.Fatalf("second plan:\n%s", out)
	}

	// Edits: the bridge's mtu (~), an added address (+), a removed veth (-).
	writeHCL(t, dir, labConfig(1, 1450, true, "10.77.0.254"))
	out = cliOK(t, d, "infra", "plan", dir, vns)
	for _, want := range []string{"~ mtu           = 1400 -> 1450", `+ resource "net_address" "second"`, `- resource "net_link" "veth"`, "# net_link.veth[1] will be destroyed", "Plan: 1 to add, 1 to change, 1 to destroy."} {
		if !strings.Contains(out, want) {
			t.Fatalf("edit plan lacks %q:\n%s", want, out)
		}
	}
	cliOK(t, d, "infra", "apply", dir, vns, "auto-approve")
	ls = links(t, ip, ns)
	if ls["br0"]["mtu"].(float64) != 1450 || ls["veth1"] != nil || ls["peer1"] != nil || ls["veth0"] == nil {
		t.Fatalf("after the edit apply: %v", ls)
	}
	if got := addrsOf(t, ip, ns, "br0"); strings.Join(got, " ") != "10.77.0.1/24 10.77.0.2/24" {
		t.Fatalf("br0 addresses after edit: %v", got)
	}
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after edits:\n%s", out)
	}

	// cairn's own applies raised no drift.
	time.Sleep(300 * time.Millisecond) // past the drift debounce
	if drift := cliOK(t, d, "-o", "json", "events", "kind=infra.drift"); strings.TrimSpace(drift) != "" {
		t.Fatalf("cairn's applies raised drift:\n%s", drift)
	}

	// Drift by hand, within a second.
	before := time.Now()
	runIP(t, ip, "-n", ns, "link", "set", "br0", "mtu", "9000")
	var drift struct {
		Time    time.Time      `json:"time"`
		Subject string         `json:"subject"`
		Data    map[string]any `json:"data"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "events", "kind=infra.drift"))
		if len(evs) > 0 {
			b, _ := json.Marshal(evs[0])
			json.Unmarshal(b, &drift)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no infra.drift event 10 s after ip link set br0 mtu 9000")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lag := drift.Time.Sub(before); lag > time.Second {
		t.Errorf("infra.drift committed %v after the change, want within 1s", lag)
	}
	if drift.Data["addr"] != "net_link.br0" || drift.Data["attribute"] != "mtu" || drift.Data["expected"] != 1450.0 || drift.Data["actual"] != 9000.0 {
		t.Fatalf("drift event: %+v", drift)
	}
	if open := cliOK(t, d, "infra", "drift"); !strings.Contains(open, "net_link.br0") || !strings.Contains(open, "9000") {
		t.Fatalf("infra drift:\n%s", open)
	}
	p, text := planJSON(t, d, dir, vns)
	if p.Add != 0 || p.Change != 1 || p.Destroy != 0 || !strings.Contains(text, "changed outside of cairn") {
		t.Fatalf("plan after drift: %s\n%s", actions(p), text)
	}
	cliOK(t, d, "infra", "apply", fmt.Sprint("plan=", p.ID))
	if links(t, ip, ns)["br0"]["mtu"].(float64) != 1450 {
		t.Fatal("apply did not repair the mtu")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "events", "kind=infra.drift"))); n != 1 {
		t.Fatalf("%d drift events, want only the one made by hand", n)
	}
	if open := strings.TrimSpace(cliOK(t, d, "-o", "json", "infra", "drift")); open != "" {
		t.Fatalf("drift still open after the repair: %s", open)
	}

	// State from history: the bridge as it was after the first apply.
	show := cliOK(t, d, "-o", "json", "infra", "state", "show", "net_link.br0", fmt.Sprint("at=", applySeq))
	if !strings.Contains(show, `"mtu":1400`) {
		t.Fatalf("state show at=%d: %s", applySeq, show)
	}
	if now := cliOK(t, d, "-o", "json", "infra", "state", "show", "net_link.br0"); !strings.Contains(now, `"mtu":1450`) {
		t.Fatalf("state show now: %s", now)
	}

	// Destroy everything; nothing ever appeared in the host namespace.
	cliOK(t, d, "infra", "destroy", dir, vns, "auto-approve")
	if ls := links(t, ip, ns); len(ls) != 1 {
		t.Fatalf("after destroy: %v", ls)
	}
	if after := hostLinks(t, ip); after != hostBefore {
		t.Fatalf("host links changed: %s -> %s", hostBefore, after)
	}
}

func lastSeq(t *testing.T, d *daemonProc) int64 {
	t.Helper()
	evs := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "reverse", "limit=1"))
	if len(evs) != 1 {
		t.Fatal("no events")
	}
	return evs[0].Seq
}

// TestInfraFailureMidApply: a route whose gateway is unreachable fails
// after the bridge and address were made; they stay made and recorded,
// the error names the route, and a fixed configuration converges.
func TestInfraFailureMidApply(t *testing.T) {
	ip, ns := infraNS(t)
	d := startDaemon(t)
	dir := filepath.Join(t.TempDir(), "lab")
	vns := "var.ns=" + ns
	writeHCL(t, dir, labConfig(1, 1400, false, "10.99.0.1"))
	out, errOut, code := cli(t, d, "infra", "apply", dir, vns, "auto-approve")
	if code == 0 {
		t.Fatalf("apply with an unreachable gateway succeeded:\n%s", out)
	}
	if !strings.Contains(out+errOut, "net_route.far") || !strings.Contains(strings.ToLower(out+errOut), "unreachable") {
		t.Fatalf("the error does not name the route and the kernel's reason:\n%s\n%s", out, errOut)
	}
	ls := links(t, ip, ns)
	if ls["br0"] == nil || ls["veth0"] == nil {
		t.Fatalf("earlier changes were not kept: %v", ls)
	}
	creates := parseNDJSON[wireEvent](t, cliOK(t, d, "-o", "json", "events", "kind=infra.create"))
	if len(creates) != 3 {
		t.Fatalf("%d infra.create events, want 3 (bridge, veth, address)", len(creates))
	}
	applies := parseNDJSON[map[string]any](t, cliOK(t, d, "-o", "json", "events", "kind=infra.apply"))
	if len(applies) != 1 || !strings.Contains(fmt.Sprint(applies[0]["data"]), "net_route.far") {
		t.Fatalf("infra.apply: %v", applies)
	}
	writeHCL(t, dir, labConfig(1, 1400, false, "10.77.0.254"))
	out = cliOK(t, d, "infra", "apply", dir, vns, "auto-approve")
	if !strings.Contains(out, "Resources: 1 added, 0 changed, 0 destroyed.") {
		t.Fatalf("re-apply:\n%s", out)
	}
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after the fix:\n%s", out)
	}
}

// TestInfraPreventDestroy: a plan that would destroy a prevent_destroy
// resource is an error naming it, and nothing is destroyed.
func TestInfraPreventDestroy(t *testing.T) {
	ip, ns := infraNS(t)
	d := startDaemon(t)
	dir := filepath.Join(t.TempDir(), "lab")
	vns := "var.ns=" + ns
	src := strings.Replace(labConfig(1, 1400, false, "10.77.0.254"), "prevent_destroy = false", "prevent_destroy = true", 1)
	writeHCL(t, dir, src)
	cliOK(t, d, "infra", "apply", dir, vns, "auto-approve")
	for _, args := range [][]string{{"infra", "plan", dir, vns, "destroy"}, {"infra", "destroy", dir, vns, "auto-approve"}} {
		out, errOut, code := cli(t, d, args...)
		if code == 0 || !strings.Contains(errOut, "net_link.br0 has lifecycle.prevent_destroy set") {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	if links(t, ip, ns)["br0"] == nil {
		t.Fatal("br0 was destroyed")
	}
	// A replacement is blocked too.
	writeHCL(t, dir, strings.Replace(src, `kind      = "bridge"`, `kind      = "dummy"`, 1))
	if _, errOut, code := cli(t, d, "infra", "plan", dir, vns); code == 0 || !strings.Contains(errOut, "would replace it") {
		t.Fatalf("replacing plan: exit %d %s", code, errOut)
	}
}

// TestInfraImportNet: a bridge made by hand with ip, imported, is then
// managed: the next plan says No changes, and a change to it is planned.
func TestInfraImportNet(t *testing.T) {
	ip, ns := infraNS(t)
	runIP(t, ip, "-n", ns, "link", "add", "br9", "type", "bridge")
	runIP(t, ip, "-n", ns, "link", "set", "br9", "mtu", "1400", "up")
	d := startDaemon(t)
	dir := filepath.Join(t.TempDir(), "imp")
	conf := func(mtu int) string {
		return fmt.Sprintf(`
variable "ns" {}
resource "net_link" "br9" {
  namespace = var.ns
  name      = "br9"
  kind      = "bridge"
  mtu       = %d
}`, mtu)
	}
	writeHCL(t, dir, conf(1400))
	vns := "var.ns=" + ns
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "Plan: 1 to add") {
		t.Fatalf("plan before import:\n%s", out)
	}
	cliOK(t, d, "infra", "import", "net_link.br9", ns+"/br9", dir, vns)
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after import:\n%s", out)
	}
	writeHCL(t, dir, conf(1450))
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "~ mtu") || !strings.Contains(out, "Plan: 0 to add, 1 to change, 0 to destroy.") {
		t.Fatalf("plan after an edit:\n%s", out)
	}
}

// TestInfraReplacedBridgeKeepsItsPorts: replacing a bridge takes its ports
// off it in the kernel; the veths that name it as master are enslaved
// again in the same apply, so the apply leaves no drift and the next plan
// is empty.
func TestInfraReplacedBridgeKeepsItsPorts(t *testing.T) {
	ip, ns := infraNS(t)
	d := startDaemon(t)
	dir := filepath.Join(t.TempDir(), "lab")
	vns := "var.ns=" + ns
	writeHCL(t, dir, labConfig(2, 1400, false, "10.77.0.254"))
	cliOK(t, d, "infra", "apply", dir, vns, "auto-approve")
	out := cliOK(t, d, "infra", "apply", dir, vns, "replace=net_link.br0", "auto-approve")
	if !strings.Contains(out, "# net_link.veth[0] will be updated in-place (because net_link.br0 is replaced)") {
		t.Fatalf("apply:\n%s", out)
	}
	ls := links(t, ip, ns)
	for _, v := range []string{"veth0", "veth1"} {
		if ls[v]["master"] != "br0" {
			t.Fatalf("%s after the bridge was replaced: %v", v, ls[v])
		}
	}
	time.Sleep(300 * time.Millisecond) // past the drift debounce
	if drift := strings.TrimSpace(cliOK(t, d, "-o", "json", "events", "kind=infra.drift")); drift != "" {
		t.Fatalf("cairn's own apply raised drift:\n%s", drift)
	}
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after the replacement:\n%s", out)
	}
}

// TestInfraReplacedNamespaceTakesItsContentAlong: replacing a namespace
// deletes everything in it; what is in it and changes in the same apply
// (the bridge's mtu) is made again with its new values, the rest made
// again as it was.
func TestInfraReplacedNamespaceTakesItsContentAlong(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces; CI runs as root")
	}
	ip := requireIP(t)
	var rb [4]byte
	rand.Read(rb[:])
	ns := "cairn-infra-" + hex.EncodeToString(rb[:])
	t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	d := startDaemon(t)
	dir := filepath.Join(t.TempDir(), "nsr")
	conf := func(mtu int) string {
		return fmt.Sprintf(`
variable "ns" {}
resource "net_namespace" "lab" {
  name = var.ns
}
resource "net_link" "br0" {
  namespace = net_namespace.lab.name
  name      = "br0"
  kind      = "bridge"
  mtu       = %d
}
resource "net_address" "gw" {
  namespace = net_namespace.lab.name
  link      = net_link.br0.name
  cidr      = "10.79.0.1/24"
}`, mtu)
	}
	vns := "var.ns=" + ns
	writeHCL(t, dir, conf(1400))
	cliOK(t, d, "infra", "apply", dir, vns, "auto-approve")
	writeHCL(t, dir, conf(1500))
	out := cliOK(t, d, "infra", "apply", dir, vns, "replace=net_namespace.lab", "auto-approve")
	if !strings.Contains(out, "gone along with the replaced net_namespace.lab") {
		t.Fatalf("apply:\n%s", out)
	}
	if br := links(t, ip, ns)["br0"]; br == nil || br["mtu"].(float64) != 1500 {
		t.Fatalf("br0 after the namespace was replaced: %v", br)
	}
	if got := addrsOf(t, ip, ns, "br0"); strings.Join(got, " ") != "10.79.0.1/24" {
		t.Fatalf("addresses: %v", got)
	}
	if out := cliOK(t, d, "infra", "plan", dir, vns); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after:\n%s", out)
	}
	cliOK(t, d, "infra", "destroy", dir, vns, "auto-approve")
}
