package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportThenNoChanges(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "ws")
	root := publicDir(t)
	p := filepath.Join(root, "existing")
	if err := os.WriteFile(p, []byte("was here"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, map[string]string{"main.hcl": fmt.Sprintf(`
resource "file" "existing" {
  path    = %q
  content = "was here"
  mode    = "0600"
}`, p)})
	var row planRow
	json.Unmarshal(e.ok("infra plan " + cfg).rows[0], &row)
	if row.Add != 1 {
		t.Fatalf("plan before import: %+v", row)
	}
	e.ok(fmt.Sprintf("infra import file.existing %s %s", p, cfg))
	e.noChanges("infra plan " + cfg)
	if a := e.run(fmt.Sprintf("infra import file.existing %s %s", p, cfg)); a.err == nil {
		t.Fatal("imported twice")
	}
	if a := e.run(fmt.Sprintf("infra import file.nope %s %s", p, cfg)); a.err == nil || !strings.Contains(a.err.Error(), "not declared") {
		t.Fatalf("import of an undeclared address: %v", a.err)
	}
}
