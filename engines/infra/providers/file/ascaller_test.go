package fileprovider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/journal"
)

// TestWorksAsTheCaller: for a non-root caller the kernel judges every file
// operation. Uid 65534 cannot create a file in a root-owned directory,
// read a 0600 root file through data "file", import a file inside a 0700
// directory, or overwrite a root file it imported; root can do all of it.
func TestWorksAsTheCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root (CI runs as root)")
	}
	dir, err := os.MkdirTemp("", "fileprovider-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "shadow")
	os.WriteFile(secret, []byte("root:secret\n"), 0o600)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o700)
	inside := filepath.Join(private, "conf")
	os.WriteFile(inside, []byte("x\n"), 0o644)

	nobody, err := registered(t).Open(ctx, provider.Env{Actor: journal.Actor{UID: 65534, GID: 65534, Via: "socket"}})
	if err != nil {
		t.Fatal(err)
	}
	root := open(t)
	file, data := resource(t, "file"), registered(t).DataSources()["file"]

	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, fs.ErrPermission) && !strings.Contains(fmt.Sprint(err), "permission denied") {
			t.Errorf("%s as uid 65534: %v, want permission denied", what, err)
		}
	}
	planned := provider.Values{"path": filepath.Join(dir, "cron"), "content": "* * * * * root sh\n", "mode": "0644"}
	_, err = file.Create(ctx, nobody, planned)
	denied("create in a root directory", err)
	_, err = data.Read(ctx, nobody, provider.Values{"path": secret})
	denied("data file of a 0600 root file", err)
	_, _, err = file.Read(ctx, nobody, inside)
	denied("import a file inside a 0700 directory", err)
	prior, _, err := file.Read(ctx, root, secret)
	if err != nil {
		t.Fatal(err)
	}
	next := prior.Clone()
	next["content"] = "evil\n"
	_, err = file.Update(ctx, nobody, secret, prior, next)
	denied("overwrite an imported root file", err)
	if b, _ := os.ReadFile(secret); string(b) != "root:secret\n" {
		t.Fatalf("the root file changed: %q", b)
	}

	if _, err := file.Create(ctx, root, planned); err != nil {
		t.Errorf("root create: %v", err)
	}
	if _, err := data.Read(ctx, root, provider.Values{"path": secret}); err != nil {
		t.Errorf("root data read: %v", err)
	}
}
