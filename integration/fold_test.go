package integration

import (
	"os"
	"strings"
	"testing"
)

// rebuildRow is one stream's row of `journal rebuild`.
type rebuildRow struct {
	Stream string `json:"stream"`
	Keys   int64  `json:"keys"`
	Before string `json:"before"`
	After  string `json:"after"`
	Same   bool   `json:"same"`
}

// TestReservedKindsAndOneFold: emit cannot write an engine's (or the
// daemon's) kinds, and every engine's state is the same whether folded
// live, refolded by journal rebuild, or reopened after a crash. Finding 9
// of the hardening issue: `emit kv.put` changed the live KV and an emitted
// lease.grant appeared only after a restart.
func TestReservedKindsAndOneFold(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	d := startDaemon(t, withFlags("--etcd", addr))
	for _, kind := range []string{"kv.put", "lease.grant", "infra.create", "capture.exec", "daemon.start", "journal.import", "auth.deny", "event.fire", "etcd.auth.user.add"} {
		_, errOut, code := cli(t, d, "emit", kind, "app/x", "value=evil")
		if code != 2 || !strings.Contains(errOut, "belongs to") {
			t.Errorf("emit %s: exit %d, %q; want invalid_argument saying who owns it", kind, code, errOut)
		}
	}
	if out := cliOK(t, d, "kv", "get", "app/x"); strings.Contains(out, "evil") {
		t.Fatalf("an emitted kv.put changed the KV: %s", out)
	}

	// A workload over every engine that folds on the audit stream.
	cliOK(t, d, "kv", "put", "app/a", "1")
	cliOK(t, d, "kv", "put", "app/b", "2")
	cliOK(t, d, "kv", "txn", "if", `version("app/a") = "1"`, "then", "put app/a 3", "del app/b", "else", "get app/a")
	cliOK(t, d, "lease", "grant", "3600s")
	cliOK(t, d, "emit", "app.note", "n", "k=v")
	bin := etcdctlBin(t) // etcd's auth: the etcdauth engine
	for _, args := range [][]string{{"user", "add", "root:pw"}, {"role", "add", "root"}, {"user", "grant-role", "root", "root"},
		{"role", "add", "r"}, {"role", "grant-permission", "r", "readwrite", "app/", "--prefix"}} {
		etcdctlOK(t, bin, addr, "", args...)
	}
	if os.Geteuid() == 0 {
		dir := writeConfig(t, `resource "file" "f" {
  path    = "`+t.TempDir()+`/f"
  content = "x\n"
}
`)
		cliOK(t, d, "infra", "apply", dir, "auto-approve")
	}

	rebuild := func(when string) map[string]rebuildRow {
		t.Helper()
		rows := map[string]rebuildRow{}
		for _, r := range parseNDJSON[rebuildRow](t, cliOK(t, d, "-o", "json", "journal", "rebuild")) {
			if !r.Same || r.Before == "" {
				t.Errorf("%s: stream %s folded live to %s but refolds to %s", when, r.Stream, r.Before, r.After)
			}
			rows[r.Stream] = r
		}
		if rows["audit"].Keys == 0 {
			t.Fatalf("%s: the audit stream has no projection keys: %+v", when, rows)
		}
		return rows
	}
	first := rebuild("live")
	d.Kill()
	d.Restart()
	again := rebuild("after a crash")
	if again["audit"].Before != first["audit"].After {
		t.Errorf("the audit projection after a restart (%s) differs from before the crash (%s)", again["audit"].Before, first["audit"].After)
	}
}
