package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestEtcdSnapshotRestoreIntoEtcd: `etcdctl snapshot save` against cairn
// writes a real etcd snapshot, which `etcdctl snapshot status` reads and
// `etcdctl snapshot restore` (Debian's etcd 3.4, checking the hash)
// restores, and a real etcd started on it serves the same keys, values,
// revisions, history and lease: a user can always leave cairn for etcd
// with their data (issue 12, item 4).
func TestEtcdSnapshotRestoreIntoEtcd(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	etcdBin := etcdServerBin(t)
	_, addr := startEtcdDaemon(t)
	etcdctlOK(t, bin, addr, "", "put", "app/a", "1")
	etcdctlOK(t, bin, addr, "", "put", "app/a", "2")
	etcdctlOK(t, bin, addr, "", "put", "app/b", "gone")
	etcdctlOK(t, bin, addr, "", "del", "app/b")
	etcdctlOK(t, bin, addr, "\nput app/c 3\nput app/d 4\n\n\n", "txn")
	var grant struct {
		ID int64 `json:"ID"`
	}
	if err := json.Unmarshal([]byte(etcdctlOK(t, bin, addr, "", "lease", "grant", "600", "-w", "json")), &grant); err != nil {
		t.Fatal(err)
	}
	lease := strconv.FormatInt(grant.ID, 16)
	etcdctlOK(t, bin, addr, "", "put", "app/e", "leased", "--lease="+lease)
	want := etcdctlOK(t, bin, addr, "", "get", "app/", "--prefix", "-w", "json")

	dir := t.TempDir()
	snap := filepath.Join(dir, "cairn.db")
	etcdctlOK(t, bin, addr, "", "snapshot", "save", snap)
	var status struct {
		Revision  int64 `json:"revision"`
		TotalKey  int64 `json:"totalKey"`
		TotalSize int64 `json:"totalSize"`
	}
	if err := json.Unmarshal([]byte(etcdctlOK(t, bin, "", "", "snapshot", "status", snap, "-w", "json")), &status); err != nil || status.Revision != 8 || status.TotalKey == 0 {
		t.Fatalf("snapshot status: %+v %v", status, err)
	}

	client := restoreIntoEtcd(t, etcdBin, bin, snap)

	// The same keys with the same revisions and versions; the headers
	// differ only in the cluster's and member's ids and the raft term.
	got := etcdctlOK(t, bin, client, "", "get", "app/", "--prefix", "-w", "json")
	if kvsOf(t, got) != kvsOf(t, want) {
		t.Fatalf("the restored etcd serves\n%s\nwant\n%s", kvsOf(t, got), kvsOf(t, want))
	}
	for rev, wantVal := range map[string]string{"2": "1", "4": "gone"} {
		key := map[string]string{"2": "app/a", "4": "app/b"}[rev]
		if out := etcdctlOK(t, bin, client, "", "get", key, "--rev="+rev, "--print-value-only"); strings.TrimSpace(out) != wantVal {
			t.Errorf("restored etcd: get %s --rev=%s = %q, want %q", key, rev, out, wantVal)
		}
	}
	if out := etcdctlOK(t, bin, client, "", "lease", "list"); !strings.Contains(out, lease) {
		t.Errorf("restored etcd: lease list = %q, want lease %s", out, lease)
	}
}

// kvsOf is the kvs of etcdctl's get -w json, as JSON.
func kvsOf(t *testing.T, out string) string {
	t.Helper()
	var v struct {
		Kvs json.RawMessage `json:"kvs"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return string(v.Kvs)
}

// restoreIntoEtcd restores snap with etcdctl snapshot restore and starts a
// real etcd on it for the rest of the test; it returns its client address.
func restoreIntoEtcd(t *testing.T, etcdBin, bin, snap string) string {
	t.Helper()
	dir := t.TempDir()
	peer, client := freeAddr(t), freeAddr(t)
	data := filepath.Join(dir, "etcd")
	etcdctlOK(t, bin, "", "", "snapshot", "restore", snap, "--data-dir", data, "--name", "restored",
		"--initial-cluster", "restored=http://"+peer, "--initial-advertise-peer-urls", "http://"+peer)
	cmd := exec.Command(etcdBin, "--data-dir", data, "--name", "restored",
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "restored=http://"+peer, "--log-level", "error")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	waitEtcdReady(t, client)
	return client
}

// TestEtcdSnapshotCarriesAuth: a snapshot taken with etcd's auth on holds
// its users, roles and permissions, so the etcd restored from it asks for
// a user, lets a reader read and not write, and lets root write.
func TestEtcdSnapshotCarriesAuth(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	etcdBin := etcdServerBin(t)
	_, addr := startEtcdDaemon(t)
	enableEtcdAuth(t, bin, addr)
	snap := filepath.Join(t.TempDir(), "cairn.db")
	etcdctlOK(t, bin, addr, "", "--user", "root:rootpw", "snapshot", "save", snap)

	client := restoreIntoEtcd(t, etcdBin, bin, snap)
	if _, errOut, err := etcdctl(t, bin, client, "", "get", "app/x"); err == nil || !strings.Contains(errOut, "user name is empty") {
		t.Fatalf("the restored etcd answers a get without a user: %v %q", err, errOut)
	}
	if out := etcdctlOK(t, bin, client, "", "--user", "alice:alicepw", "get", "app/x", "--print-value-only"); strings.TrimSpace(out) != "1" {
		t.Fatalf("alice reads app/x from the restored etcd: %q", out)
	}
	if _, errOut, err := etcdctl(t, bin, client, "", "--user", "alice:alicepw", "put", "app/x", "2"); err == nil || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice writes to the restored etcd: %v %q", err, errOut)
	}
	etcdctlOK(t, bin, client, "", "--user", "root:rootpw", "put", "app/x", "3")
	if out := etcdctlOK(t, bin, client, "", "--user", "root:rootpw", "role", "get", "reader"); !strings.Contains(out, "app/") {
		t.Fatalf("the reader role in the restored etcd: %q", out)
	}
}
