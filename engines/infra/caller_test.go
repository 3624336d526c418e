package infra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/journal"
)

// TestConfigurationsAreReadAsTheCaller: a non-root caller cannot have the
// daemon read a configuration or var-file it could not read itself: a root
// 0600 var-file, a configuration inside a 0700 directory, a symlink into
// it. The kernel says so, as it would to the caller's shell; root reads
// them all. (Issue 11 finding 2: a permission pre-check ignored directory
// search permission and followed symlinks.)
func TestConfigurationsAreReadAsTheCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root (CI runs as root)")
	}
	top, err := os.MkdirTemp("", "infra-caller-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	os.Chmod(top, 0o755)
	open := filepath.Join(top, "open")
	os.Mkdir(open, 0o755)
	os.WriteFile(filepath.Join(open, "main.hcl"), []byte("variable \"token\" {\n  type = string\n}\n"), 0o644)
	secret := filepath.Join(top, "secret.tfvars")
	os.WriteFile(secret, []byte(`token = "x"`), 0o600)
	private := filepath.Join(top, "private")
	os.Mkdir(private, 0o700)
	os.WriteFile(filepath.Join(private, "main.hcl"), []byte("variable \"token\" {}\n"), 0o644)
	link := filepath.Join(top, "link")
	os.Symlink(private, link)

	alice := journal.Actor{UID: 1000, GID: 1000, Via: "socket"}
	root := journal.Actor{UID: 0, Via: "socket"}
	denied := func(what string, diags interface{ Error() string }, err error) {
		t.Helper()
		msg := ""
		if err != nil {
			msg = err.Error()
		} else if diags != nil {
			msg = diags.Error()
		}
		if !strings.Contains(msg, "permission denied") {
			t.Errorf("%s as uid 1000: %q, want the kernel's permission denied", what, msg)
		}
	}
	cfg, diags, err := loadConfig(alice, open)
	if err != nil || diags.HasErrors() {
		t.Fatalf("uid 1000 loading a readable configuration: %v %v", err, diags)
	}
	_, diags, err = variableValues(alice, cfg, config.Inputs{Files: []string{secret}})
	denied("a root 0600 var-file", diags, err)
	_, diags, err = loadConfig(alice, private)
	denied("a configuration inside a 0700 directory", diags, err)
	_, diags, err = loadConfig(alice, link)
	denied("a symlink into a 0700 directory", diags, err)

	if _, diags, err := variableValues(root, cfg, config.Inputs{Files: []string{secret}}); err != nil || diags.HasErrors() {
		t.Errorf("root reading the var-file: %v %v", err, diags)
	}
	if _, diags, err := loadConfig(root, link); err != nil || diags.HasErrors() {
		t.Errorf("root loading through the symlink: %v %v", err, diags)
	}
}

// file() and templatefile() read with the caller's credentials: a
// non-root caller's configuration cannot make the daemon read a root
// 0600 file, nor a module in a 0700 directory; root can.
func TestFileFunctionsReadAsTheCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root (CI runs as root)")
	}
	top, err := os.MkdirTemp("", "infra-filefn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	os.Chmod(top, 0o755)
	os.WriteFile(filepath.Join(top, "shadow"), []byte("root only"), 0o600)
	os.WriteFile(filepath.Join(top, "open.tftpl"), []byte("hello ${who}"), 0o644)
	cfgDir := filepath.Join(top, "cfg")
	os.Mkdir(cfgDir, 0o755)
	os.WriteFile(filepath.Join(cfgDir, "main.tf"), []byte(`
output "open" {
  value = templatefile("../open.tftpl", { who = "alice" })
}
output "secret" {
  value     = file("${path.module}/../shadow")
  sensitive = true
}
`), 0o644)
	run := func(a journal.Actor) (*Plan, error) {
		cfg, diags, err := loadConfig(a, cfgDir)
		if err != nil || diags.HasErrors() {
			t.Fatalf("load: %v %v", err, diags)
		}
		return plan(cfg, nil, nil, Reality{}, planOptions{Workspace: "w", Dir: cfgDir, ReadFile: fileReader(a)})
	}
	_, err = run(journal.Actor{UID: 1000, GID: 1000, Via: "socket"})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("uid 1000 reading a root 0600 file through file(): %v", err)
	}
	p, err := run(journal.Actor{UID: 0, Via: "socket"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Outputs["open"] != "hello alice" || p.Outputs["secret"] != "(sensitive value)" {
		t.Fatalf("outputs %v", p.Outputs)
	}
	// What file() reads of a file others cannot read is sensitive: an
	// output of it without sensitive = true is refused, as for data "file".
	os.WriteFile(filepath.Join(cfgDir, "main.tf"), []byte(`
output "secret" {
  value = file("${path.module}/../shadow")
}
`), 0o644)
	if _, err := run(journal.Actor{UID: 0, Via: "socket"}); err == nil || !strings.Contains(err.Error(), "Output refers to sensitive values") {
		t.Fatalf("a private file's content shown in an output: %v", err)
	}
}
