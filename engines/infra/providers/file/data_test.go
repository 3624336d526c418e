package fileprovider

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func TestFileDataSource(t *testing.T) {
	d, ok := registered(t).DataSources()["file"]
	if !ok {
		t.Fatal("data source file missing")
	}
	s := open(t)
	path := filepath.Join(t.TempDir(), "hostname")
	if err := os.WriteFile(path, []byte("node1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := d.Read(ctx, s, provider.Values{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	if v.String("content") != "node1\n" || v.String("mode") != "0600" ||
		v.String("sha256") != sha256Hex([]byte("node1\n")) || v.String("owner") != formatOwner(os.Geteuid(), os.Getegid()) {
		t.Errorf("data source read %v", v)
	}

	_, err = d.Read(ctx, s, provider.Values{"path": path + ".missing"})
	wantErr(t, err, "file "+path+".missing does not exist")
	_, err = d.Read(ctx, s, provider.Values{"path": "hostname"})
	wantErr(t, err, "not absolute")
	_, err = d.Read(ctx, s, provider.Values{"path": filepath.Dir(path)})
	wantErr(t, err, "is a directory")
}
