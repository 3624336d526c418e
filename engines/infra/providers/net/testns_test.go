package netprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// The kernel tests run in namespaces of their own, made and deleted with
// ip netns, so nothing shows in the host's namespace.

var nsSeq atomic.Int64

// needKernel skips a test that needs root and ip, unless CI (which runs as
// root with iproute2) lacks ip: then it fails.
func needKernel(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces; CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ip (iproute2) not found, and CI must run the net provider's tests: %v", err)
		}
		t.Skipf("ip (iproute2) not found: %v", err)
	}
}

// nsName returns a namespace name unique to this process and call.
func nsName() string { return fmt.Sprintf("cairn-t-%d-%d", os.Getpid(), nsSeq.Add(1)) }

// testNS makes a namespace for the test with ip netns add and deletes it
// when the test ends.
func testNS(t testing.TB) string {
	t.Helper()
	needKernel(t)
	name := nsName()
	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// ip runs ip with args and returns its output, failing the test on error.
func ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipJSON runs ip -n ns -j with args ("" for no -n) and parses what it
// prints.
func ipJSON(t testing.TB, ns string, args ...string) []map[string]any {
	t.Helper()
	args = append([]string{"-j"}, args...)
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	out := ip(t, args...)
	var v []map[string]any
	if strings.TrimSpace(out) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return v
}

// ipLink returns ip's detailed view of one link, nil when it does not exist.
func ipLink(t testing.TB, ns, name string) map[string]any {
	t.Helper()
	for _, l := range ipJSON(t, ns, "-d", "link", "show") {
		if l["ifname"] == name {
			return l
		}
	}
	return nil
}

// ipKind returns a link's kind as ip -d shows it (tun and tap apart).
func ipKind(l map[string]any) string {
	info, _ := l["linkinfo"].(map[string]any)
	kind, _ := info["info_kind"].(string)
	if kind == "tun" {
		data, _ := info["info_data"].(map[string]any)
		kind, _ = data["type"].(string)
	}
	return kind
}

func hasFlag(l map[string]any, flag string) bool {
	flags, _ := l["flags"].([]any)
	for _, f := range flags {
		if f == flag {
			return true
		}
	}
	return false
}

// ipAddrs returns the addresses ip shows on a link, as address/prefix.
func ipAddrs(t testing.TB, ns, link string) []string {
	t.Helper()
	var out []string
	for _, l := range ipJSON(t, ns, "addr", "show", "dev", link) {
		infos, _ := l["addr_info"].([]any)
		for _, i := range infos {
			m := i.(map[string]any)
			out = append(out, fmt.Sprintf("%v/%v", m["local"], m["prefixlen"]))
		}
	}
	return out
}

// ipRoute returns the route ip shows to dst ("default" or a network),
// nil when there is none.
func ipRoute(t testing.TB, ns, family, dst string) map[string]any {
	t.Helper()
	for _, r := range ipJSON(t, ns, family, "route", "show") {
		if r["dst"] == dst {
			return r
		}
	}
	return nil
}

// open starts a session that ends with the test.
func open(t testing.TB) *session {
	t.Helper()
	s, err := New().Open(context.Background(), provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*session)
}

// config does what the engine does with a configuration before a provider
// sees it: fills defaults and validates.
func config(t testing.TB, r provider.Resource, v provider.Values) provider.Values {
	t.Helper()
	known := map[string]bool{}
	out := v.Clone()
	for name, a := range r.Schema().Attributes {
		if _, ok := v[name]; ok {
			known[name] = true
		} else if a.Default != nil {
			out[name] = a.Default
		}
	}
	if err := r.Validate(out, known); err != nil {
		t.Fatalf("validate %v: %v", v, err)
	}
	return out
}

// create configures and creates, failing the test on error (skipping it
// when the machine lacks what the resource needs).
func create(t testing.TB, s provider.Session, r provider.Resource, v provider.Values) (string, provider.Values) {
	t.Helper()
	v = config(t, r, v)
	id, err := r.ID(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Create(context.Background(), s, v)
	skipUnsupported(t, err)
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	return id, got
}

// asUnsupported returns the *provider.Unsupported err wraps, or nil.
func asUnsupported(err error) *provider.Unsupported {
	var u *provider.Unsupported
	if errors.As(err, &u) {
		return u
	}
	return nil
}

func skipUnsupported(t testing.TB, err error) {
	t.Helper()
	if asUnsupported(err) != nil {
		t.Skip(err)
	}
}

// read reads id in a fresh session, so nothing cached answers.
func read(t testing.TB, r provider.Resource, id string) (provider.Values, bool) {
	t.Helper()
	v, found, err := r.Read(context.Background(), open(t), id)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return v, found
}

// sameValues fails the test when a and b differ.
func sameValues(t testing.TB, what string, a, b provider.Values) {
	t.Helper()
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s:\n got %v\nwant %v", what, a, b)
	}
}

// noDiff fails the test when reality (read) differs from any attribute the
// configuration sets: a second plan would not be empty.
func noDiff(t testing.TB, r provider.Resource, cfg, read provider.Values) {
	t.Helper()
	cfg = config(t, r, cfg)
	for name, want := range cfg {
		if !reflect.DeepEqual(read[name], want) {
			t.Errorf("%s: configured %v, reality %v: the next plan would change it", name, want, read[name])
		}
	}
}
