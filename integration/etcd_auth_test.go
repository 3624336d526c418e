package integration

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEtcdAuth: etcd's auth with the real etcdctl (issue 12, item 5):
// users and roles with key-range permissions, auth enable, a READ role
// that reads but cannot write (etcd's own errors), a wrong password, the
// etcd user in the journaled actor, users and roles that survive a
// restart, and client/v3 connecting with Username/Password.
func TestEtcdAuth(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	d, addr := startEtcdDaemon(t)
	enableEtcdAuth(t, bin, addr)
	if _, errOut, err := etcdctl(t, bin, addr, "", "get", "app/x"); err == nil || !strings.Contains(errOut, "user name is empty") {
		t.Fatalf("get without a user once auth is on: %v %q", err, errOut)
	}
	if out := etcdctlOK(t, bin, addr, "", "--user", "alice:alicepw", "get", "app/x", "--print-value-only"); strings.TrimSpace(out) != "1" {
		t.Fatalf("alice reads app/x: %q", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "alice:alicepw", "put", "app/x", "2"}, "etcdserver: permission denied"},
		{[]string{"--user", "alice:alicepw", "get", "other"}, "etcdserver: permission denied"},
		{[]string{"--user", "alice:wrong", "get", "app/x"}, "etcdserver: authentication failed, invalid user ID or password"},
		{[]string{"--user", "alice:alicepw", "user", "list"}, "etcdserver: permission denied"},
	} {
		if _, errOut, err := etcdctl(t, bin, addr, "", tc.args...); err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("etcdctl %s: %v %q, want %q", strings.Join(tc.args, " "), err, errOut, tc.want)
		}
	}
	etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "put", "app/x", "3")
	puts := parseNDJSON[struct {
		Actor struct {
			Principal string `json:"principal"`
		} `json:"actor"`
	}](t, cliOK(t, d, "-o", "json", "events", "kind=kv.put"))
	if len(puts) != 2 || puts[1].Actor.Principal != "etcd:root" {
		t.Fatalf("kv.put actors %+v, want the last by etcd:root", puts)
	}
	if out := cliOK(t, d, "-o", "json", "events", "kind=etcd.auth.*"); strings.Contains(out, "rootpw") || strings.Contains(out, "alicepw") {
		t.Fatal("a password reached the journal in clear")
	}

	// Users and roles are journaled: a restart keeps them.
	d.Stop()
	d.Restart()
	if out := etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "role", "get", "reader"); !strings.Contains(out, "prefix app/") {
		t.Fatalf("role reader after a restart: %q", out)
	}

	// client/v3, as an application connects.
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, Username: "alice", Password: "alicepw", DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r, err := c.Get(ctx, "app/x"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "3" {
		t.Fatalf("client/v3 as alice: %v %v", r, err)
	}
	if _, err := c.Put(ctx, "app/x", "4"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("client/v3 put as alice: %v", err)
	}
	// Revoking a lease deletes its keys: etcd asks write permission on
	// each of them, which alice's read-only role lacks.
	var grant struct {
		ID int64 `json:"ID"`
	}
	if err := json.Unmarshal([]byte(etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "lease", "grant", "600", "-w", "json")), &grant); err != nil {
		t.Fatal(err)
	}
	lease := strconv.FormatInt(grant.ID, 16)
	etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "put", "app/leased", "v", "--lease="+lease)
	if _, errOut, err := etcdctl(t, bin, addr, "", "--user", "alice:alicepw", "lease", "revoke", lease); err == nil || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice revokes a lease holding app/leased: %v %q", err, errOut)
	}
	etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "lease", "revoke", lease)
	etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "auth", "disable")
	etcdctlOK(t, bin, addr, "", "put", "app/y", "after")
}

// enableEtcdAuth sets up etcd's auth as the tests use it — root (password
// rootpw) with the root role, alice (alicepw) with a role reading app/ —
// puts app/x = 1 and turns auth on.
func enableEtcdAuth(t *testing.T, bin, addr string) {
	t.Helper()
	for _, args := range [][]string{
		{"user", "add", "root:rootpw"}, {"role", "add", "root"}, {"user", "grant-role", "root", "root"},
		{"role", "add", "reader"}, {"role", "grant-permission", "reader", "read", "app/", "--prefix"},
		{"user", "add", "alice:alicepw"}, {"user", "grant-role", "alice", "reader"},
		{"put", "app/x", "1"},
		{"auth", "enable"},
	} {
		etcdctlOK(t, bin, addr, "", args...)
	}
}
