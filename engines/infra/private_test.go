package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// journaled is every infra event as JSON, for tests that look for a
// string anywhere in what the journal keeps.
func (e *env) journaled() string {
	e.t.Helper()
	var sb strings.Builder
	for _, ev := range e.events() {
		b, err := json.Marshal(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// TestPrivateFileContentIsJournaledAsADigest: the content of a file other
// users cannot read (no o+r on it, or no o+x on a directory above it)
// reaches the journal only as a digest, whether cairn made it, imported
// it or read it as data; a world-readable file's content is kept as is.
func TestPrivateFileContentIsJournaledAsADigest(t *testing.T) {
	e := newEnv(t)
	pub := publicDir(t)
	hidden := filepath.Join(pub, "hidden") // nothing in it is world-readable
	if err := os.Mkdir(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ws")
	existing := filepath.Join(pub, "existing")
	if err := os.WriteFile(existing, []byte("imported-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "open" {
  path    = "%[1]s/open"
  content = "public-words"
}
resource "file" "closed" {
  path    = "%[1]s/closed"
  content = "mode-secret"
  mode    = "0640"
}
resource "file" "buried" {
  path    = "%[2]s/buried"
  content = "dir-secret"
}
resource "file" "existing" {
  path    = %[3]q
  content = "imported-secret"
  mode    = "0600"
}`, pub, hidden, existing)})
	e.ok(fmt.Sprintf("infra import file.existing %s %s", existing, cfg))
	a := e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "the caller's plan", a.text, "mode-secret") // the caller sees what they asked for
	e.noChanges("infra plan " + cfg)

	j := e.journaled()
	for _, secret := range []string{"mode-secret", "dir-secret", "imported-secret"} {
		if strings.Contains(j, secret) {
			t.Errorf("the journal holds %q:\n%s", secret, j)
		}
	}
	mustContain(t, "journal", j, "public-words")
	show := e.ok("infra state show file.closed")
	mustContain(t, "state show", string(show.rows[0]), "(sensitive value)")

	// A file that becomes private outside cairn: refresh and drift keep
	// its new content out of the journal.
	if err := os.Chmod(filepath.Join(pub, "open"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pub, "open"), []byte("now-private"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("infra refresh")
	if j := e.journaled(); strings.Contains(j, "now-private") {
		t.Error("refresh journaled the content of a file that became private")
	}
}

// TestDataFileOfAPrivateFileIsSensitive: data "file" of a file others
// cannot read is a sensitive value, as Terraform treats a sensitive file:
// an output of it must say sensitive = true, and shows a digest.
func TestDataFileOfAPrivateFileIsSensitive(t *testing.T) {
	e := newEnv(t)
	pub := publicDir(t)
	p := filepath.Join(pub, "token")
	if err := os.WriteFile(p, []byte("token-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ws")
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
data "file" "t" {
  path = %q
}
output "t" {
  value = data.file.t.content
}`, p)})
	a := e.run("infra apply " + cfg + " auto-approve")
	if a.err == nil || !strings.Contains(a.err.Error(), "Output refers to sensitive values") {
		t.Fatalf("an output of a private file without sensitive = true: %v\n%s", a.err, a.text)
	}
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
data "file" "t" {
  path = %q
}
output "t" {
  value     = data.file.t.content
  sensitive = true
}`, p)})
	a = e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "(sensitive value)")
	if j := e.journaled(); strings.Contains(j, "token-secret") || strings.Contains(a.text, "token-secret") {
		t.Fatalf("the private file's content was shown or journaled:\n%s\n%s", a.text, j)
	}

	// The same file made world-readable is an ordinary value.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
data "file" "t" {
  path = %q
}
output "t" {
  value = data.file.t.content
}`, p)})
	a = e.ok("infra apply " + cfg + " auto-approve")
	mustContain(t, "apply", a.text, "token-secret")
}
