package netcfg

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/cairnhq/cairn/internal/mountinfo"
)

// The kernel tests run in a network namespace of their own: the test's
// goroutine is locked to its thread, which joins a fresh namespace for the
// test's length. The bridge, its rules and the commands the test runs
// (forked from that thread) all live there; nothing shows on the host.

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// needKernel skips a test that needs root, ip, iptables and nsenter, unless
// CI=true: CI runs as root with them, so there it fails.
func needKernel(t testing.TB) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root to make network namespaces, bridges and iptables rules; CI runs as root")
		return
	}
	for _, bin := range []string{"ip", "iptables", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip("%s not found (Debian's iproute2, iptables, util-linux): %v", bin, err)
			return
		}
	}
}

// inTestNS moves the test's goroutine, locked to its thread, into a fresh
// network namespace until the test ends, and returns that namespace. Call
// it before anything else registers a cleanup: it must be undone last.
func inTestNS(t testing.TB) netns.NsHandle {
	t.Helper()
	needKernel(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread ends with the test's goroutine.
			t.Errorf("back to the original namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
	// A host has its loopback up; published ports listen there.
	run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// newNetwork opens a Network on the bridge and subnet in a fresh state
// directory, set up, for a test already in its namespace. At the end it
// closes it and unmounts any namespace left in the state directory.
func newNetwork(t testing.TB, bridge, subnet string) *Network {
	t.Helper()
	dir := t.TempDir()
	n := openNetwork(t, dir, bridge, subnet)
	if err := n.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

// openNetwork opens a Network on dir, closed and its leftover namespaces
// unmounted when the test ends.
func openNetwork(t testing.TB, dir, bridge, subnet string) *Network {
	t.Helper()
	n, err := New(Config{Bridge: bridge, Subnet: netip.MustParsePrefix(subnet), StateDir: dir, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		paths, _ := filepath.Glob(filepath.Join(dir, "netns", "*"))
		for _, p := range paths {
			deleteNamedNetns(p)
		}
	})
	return n
}

// run runs a command from the test's thread, in the test's namespace, and
// returns its output, failing the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipJSON runs ip -j with args, in the namespace mounted at nsPath ("" for
// the test's), and parses what it prints.
func ipJSON(t testing.TB, nsPath string, args ...string) []map[string]any {
	t.Helper()
	args = append([]string{"-j"}, args...)
	out := ""
	if nsPath == "" {
		out = run(t, "ip", args...)
	} else {
		out = run(t, "nsenter", append([]string{"--net=" + nsPath, "ip"}, args...)...)
	}
	if strings.TrimSpace(out) == "" {
		return nil
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return v
}

// ipLink returns ip's detailed view of one link, nil when it does not exist.
func ipLink(t testing.TB, nsPath, name string) map[string]any {
	t.Helper()
	for _, l := range ipJSON(t, nsPath, "-d", "link", "show") {
		if l["ifname"] == name {
			return l
		}
	}
	return nil
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

// ipAddrs returns the IPv4 addresses ip shows on a link, as address/prefix.
func ipAddrs(t testing.TB, nsPath, link string) []string {
	t.Helper()
	var out []string
	for _, l := range ipJSON(t, nsPath, "-4", "addr", "show", "dev", link) {
		infos, _ := l["addr_info"].([]any)
		for _, i := range infos {
			m := i.(map[string]any)
			out = append(out, fmt.Sprintf("%v/%v", m["local"], m["prefixlen"]))
		}
	}
	return out
}

// mounted reports whether path is a mount point, per /proc/self/mountinfo.
func mounted(t testing.TB, path string) bool {
	t.Helper()
	mounts, err := mountinfo.Self()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.MountPoint == path {
			return true
		}
	}
	return false
}

// inNS runs f on a thread of its own that joined the namespace mounted at
// path.
func inNS(t testing.TB, path string, f func() error) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := inNamespace(ns, f); err != nil {
		t.Fatal(err)
	}
}

// echoServer listens on port in the namespace mounted at path and echoes
// each connection, until the test ends.
func echoServer(t testing.TB, path string, port uint16) {
	t.Helper()
	var ln net.Listener
	inNS(t, path, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// echo dials addr (from the calling thread's namespace), sends a line and
// checks that it comes back.
func echo(t testing.TB, addr string) {
	t.Helper()
	if err := echoOnce(addr); err != nil {
		t.Fatal(err)
	}
}

// echoOnce is echo for any goroutine: it returns what went wrong.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const msg = "hello through the bridge\n"
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write to %s: %w", addr, err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != msg {
		return fmt.Errorf("echo from %s: %q, %v; want %q", addr, got, err, msg)
	}
	return nil
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
