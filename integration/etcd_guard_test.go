package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// etcdctlAs runs the real etcdctl as uid testUID (outside the socket's
// group) against addr.
func etcdctlAs(t *testing.T, bin, addr string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints=" + addr, "--dial-timeout=10s"}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testUID, Gid: testGID}}
	cmd.Dir = "/"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestEtcdWritesAreJudged: over the etcd API a local user outside the
// socket's group may read but not write (DESIGN.md's listener rule; issue
// 11 finding 4: such a uid wrote as uid:-1); the refusal is an auth.deny
// with the caller's uid, found through the kernel, and root's writes carry
// uid 0.
func TestEtcdWritesAreJudged(t *testing.T) {
	requireRootForUsers(t)
	t.Parallel()
	bin := etcdctlBin(t)
	d, addr := startEtcdDaemon(t)
	etcdctlOK(t, bin, addr, "", "put", "app/x", "1")
	if out, errOut, err := etcdctlAs(t, bin, addr, "get", "app/x"); err != nil || !strings.Contains(out, "1") {
		t.Fatalf("get as uid %d: %v\n%s%s", testUID, err, out, errOut)
	}
	_, errOut, err := etcdctlAs(t, bin, addr, "put", "app/x", "evil")
	if err == nil || !strings.Contains(errOut, "PermissionDenied") && !strings.Contains(errOut, "permission denied") {
		t.Fatalf("put as uid %d: %v, %q; want permission denied", testUID, err, errOut)
	}
	if out := etcdctlOK(t, bin, addr, "", "get", "app/x", "--print-value-only"); strings.TrimSpace(out) != "1" {
		t.Fatalf("the refused put changed the key: %q", out)
	}
	denials := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=auth.deny"))
	if len(denials) != 1 || denials[0].Actor.UID != testUID || denials[0].Actor.Via != "etcd" || denials[0].Subject != "etcd put" {
		t.Fatalf("auth.deny events %+v, want one for uid %d via etcd", denials, testUID)
	}
	puts := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=kv.put"))
	if len(puts) != 1 || puts[0].Actor.UID != 0 || puts[0].Actor.Via != "etcd" {
		t.Fatalf("kv.put events %+v, want root's via etcd with uid 0", puts)
	}
}

// TestEtcdBeyondLoopbackRefused: --etcd on every interface stops the
// daemon with a reason, instead of serving an unauthenticated API to the
// network without a word.
func TestEtcdBeyondLoopbackRefused(t *testing.T) {
	t.Parallel()
	d := newDaemon(t, withFlags("--etcd", "0.0.0.0:0"))
	d.launch()
	if err := d.WaitExit(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if d.State.ExitCode() == 0 || !strings.Contains(d.Log(), "beyond loopback") {
		t.Fatalf("daemon with --etcd 0.0.0.0:0: %v\n%s", d.State, d.Log())
	}
}
