package infra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/journal"
)

func TestConfigurationsAreReadOnlyWhereTheCallerMay(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.tfvars")
	if err := os.WriteFile(secret, []byte(`token = "x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(secret, 0, 0); err != nil {
		t.Skip("needs root to make a file owned by root")
	}
	alice := journal.Actor{UID: 1000, GID: 1000, PID: -1, Via: "socket"}
	if err := checkReadable(alice, "", []string{secret}); err == nil || !strings.Contains(err.Error(), "not readable by uid 1000") {
		t.Fatalf("uid 1000 may read a root 0600 var-file: %v", err)
	}
	if err := checkReadable(journal.Actor{UID: 0}, "", []string{secret}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkReadable(alice, "", []string{secret}); err != nil {
		t.Fatal(err)
	}
}
