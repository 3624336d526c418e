package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeConfig writes an infra configuration that uid testUID can read.
func writeConfig(t *testing.T, hcl string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-authz-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestNonRootHostVerbsNeedGrant: a member of the socket's group may read
// and write cairn's own state, but whatever acts on the host (infra apply,
// capture start, journal rebuild) is refused with permission_denied and a
// reason, and each refusal is an auth.deny event with the caller's uid.
// Findings 1 and 3 of the hardening issue: today any socket caller is root.
func TestNonRootHostVerbsNeedGrant(t *testing.T) {
	requireRootForUsers(t)
	t.Parallel()
	d := startGroupDaemon(t)
	target := filepath.Join(t.TempDir(), "made-by-nobody")
	dir := writeConfig(t, `resource "file" "x" {
  path    = "`+target+`"
  content = "hi\n"
}
`)
	for _, stmt := range [][]string{{"kv", "put", "app/x", "1"}, {"emit", "app.note", "n"}, {"kv", "get", "app/x"}, {"events", "limit=1"}} {
		if _, errOut, code := userCLI(t, d, stmt...); code != 0 {
			t.Errorf("%v as uid %d: exit %d: %s", stmt, testUID, code, errOut)
		}
	}
	for _, stmt := range [][]string{
		{"infra", "apply", dir, "auto-approve"},
		{"capture", "start", "proc"},
		{"journal", "rebuild"},
	} {
		_, errOut, code := userCLI(t, d, stmt...)
		if code != 1 || !strings.Contains(errOut, "permission_denied") || !strings.Contains(errOut, "acts on the host") {
			t.Errorf("%v as uid %d: exit %d, %q; want permission_denied saying it acts on the host", stmt, testUID, code, errOut)
		}
	}
	if _, err := os.Lstat(target); err == nil {
		t.Fatalf("a refused apply created %s", target)
	}
	// journal import is root's: a capture file uid 65534 can read, made by root.
	exportDir, err := os.MkdirTemp("", "cairn-export-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(exportDir) })
	os.Chmod(exportDir, 0o755)
	file := filepath.Join(exportDir, "audit.cairn")
	cliOK(t, d, "journal", "export", "to="+file)
	os.Chmod(file, 0o644)
	if _, errOut, code := userCLI(t, d, "journal", "import", file); code == 0 || !strings.Contains(errOut, "permission_denied") {
		t.Errorf("journal import as uid %d: exit %d, %q; want permission_denied", testUID, code, errOut)
	}
	denials := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=auth.deny"))
	if len(denials) != 4 {
		t.Fatalf("%d auth.deny events, want 4: %+v", len(denials), denials)
	}
	for _, e := range denials {
		if e.Actor.UID != testUID || e.Actor.Via != "socket" || e.Data["access"] != "host" {
			t.Errorf("denial %+v, want uid %d via socket, access host", e, testUID)
		}
	}
}

// TestGrantedApplyRunsAsCaller: with a policy that lets the caller apply
// infrastructure, the daemon still works with the caller's filesystem
// credentials: a file in a root directory (an /etc/cron.d entry) is
// refused by the kernel, data "file" cannot read a 0600 root file (the
// shadow file), and a file in the caller's own directory is made and owned
// by the caller. Findings 1 and 2 of the hardening issue.
func TestGrantedApplyRunsAsCaller(t *testing.T) {
	requireRootForUsers(t)
	t.Parallel()
	policy := filepath.Join(t.TempDir(), "policy.cel")
	os.WriteFile(policy, []byte(`allow actor.uid == 65534 && verb.startsWith("infra ")`+"\n"), 0o644)
	d := startGroupDaemon(t, withFlags("--policy", policy))

	rootDir, err := os.MkdirTemp("", "cairn-rootdir-") // 0700 root: like /etc/cron.d to nobody
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rootDir) })
	os.Chmod(rootDir, 0o755)
	secret := filepath.Join(rootDir, "shadow")
	os.WriteFile(secret, []byte("root:$6$secret\n"), 0o600)
	mine, err := os.MkdirTemp("", "cairn-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(mine) })
	os.Chown(mine, testUID, testGID)

	cron := writeConfig(t, `resource "file" "cron" {
  path    = "`+filepath.Join(rootDir, "evil")+`"
  content = "* * * * * root sh\n"
}
`)
	_, errOut, code := userCLI(t, d, "infra", "apply", cron, "auto-approve")
	if code == 0 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("apply of a file in a root directory as uid %d: exit %d, %q; want the kernel's permission denied", testUID, code, errOut)
	}
	if _, err := os.Lstat(filepath.Join(rootDir, "evil")); err == nil {
		t.Fatal("the file in the root directory was created")
	}

	shadow := writeConfig(t, `data "file" "s" { path = "`+secret+`" }
output "s" { value = data.file.s.content }
`)
	out, errOut, code := userCLI(t, d, "infra", "plan", shadow)
	if code == 0 || strings.Contains(out+errOut, "secret") {
		t.Errorf("plan reading a 0600 root file as uid %d: exit %d\n%s%s", testUID, code, out, errOut)
	}

	own := filepath.Join(mine, "notes")
	ok := writeConfig(t, `resource "file" "n" {
  path    = "`+own+`"
  content = "mine\n"
}
`)
	if _, errOut, code := userCLI(t, d, "infra", "apply", ok, "auto-approve"); code != 0 {
		t.Fatalf("apply in the caller's own directory: exit %d: %s", code, errOut)
	}
	fi, err := os.Stat(own)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != testUID {
		t.Errorf("%s is owned by uid %d, want the caller %d", own, st.Uid, testUID)
	}
}
