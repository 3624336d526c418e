package build

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// upperDir makes an overlayfs upper directory as a RUN step leaves it: a
// new file, a hard link to it, a symlink, a deleted file (a 0/0 character
// device) and a replaced directory (opaque). Whiteouts need root.
func upperDir(t *testing.T, mtime time.Time) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("whiteouts are device nodes and trusted xattrs: root only (CI runs as root)")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc/app"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/app/conf"), []byte("x=1\n"), 0o640))
	must(os.Link(filepath.Join(dir, "etc/app/conf"), filepath.Join(dir, "etc/app/conf.bak")))
	must(os.Symlink("app/conf", filepath.Join(dir, "etc/current")))
	must(unix.Mknod(filepath.Join(dir, "etc/doomed"), unix.S_IFCHR, 0))
	must(os.Mkdir(filepath.Join(dir, "var"), 0o755))
	must(unix.Setxattr(filepath.Join(dir, "var"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.Mkdir(filepath.Join(dir, "proc"), 0o755)) // a mount point, skipped
	for _, p := range []string{"etc/app/conf", "etc/app", "etc", "var", "proc"} {
		must(os.Chtimes(filepath.Join(dir, p), mtime, mtime))
	}
	return dir
}

func writeUpper(t *testing.T, upper string) (*fileLayer, []string) {
	t.Helper()
	lw, err := newLayerWriter(filepath.Join(t.TempDir(), "layer.tar.gz"), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := diffUpper(lw, upper, map[string]bool{"proc": true}); err != nil {
		t.Fatal(err)
	}
	l, err := lw.finish()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(l.path)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var entries []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e := fmt.Sprintf("%c %s %o %d:%d %s", h.Typeflag, h.Name, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format(time.RFC3339))
		if h.Linkname != "" {
			e += " -> " + h.Linkname
		}
		entries = append(entries, e)
	}
	return l, entries
}

// TestDiffUpper pins how a RUN's changes become an OCI layer: whiteouts
// as .wh.NAME, an opaque directory's .wh..wh..opq, a hard link as a link
// to the first name, names in order, times at the epoch; and that the same
// changes made at another time give the same digests.
func TestDiffUpper(t *testing.T) {
	l1, entries := writeUpper(t, upperDir(t, time.Now()))
	want := []string{
		"5 etc/ 755 0:0 1970-01-01T00:00:00Z",
		"5 etc/app/ 755 0:0 1970-01-01T00:00:00Z",
		"0 etc/app/conf 640 0:0 1970-01-01T00:00:00Z",
		"1 etc/app/conf.bak 640 0:0 1970-01-01T00:00:00Z -> etc/app/conf",
		"2 etc/current 777 0:0 1970-01-01T00:00:00Z -> app/conf",
		"0 etc/.wh.doomed 0 0:0 1970-01-01T00:00:00Z",
		"5 var/ 755 0:0 1970-01-01T00:00:00Z",
		"0 var/.wh..wh..opq 0 0:0 1970-01-01T00:00:00Z",
	}
	if strings.Join(entries, "\n") != strings.Join(want, "\n") {
		t.Errorf("layer entries:\n%s\nwant:\n%s", strings.Join(entries, "\n"), strings.Join(want, "\n"))
	}
	l2, _ := writeUpper(t, upperDir(t, time.Now().Add(-time.Hour)))
	if l1.digest != l2.digest || l1.diffID != l2.diffID {
		t.Errorf("the same changes at another time gave %s/%s, then %s/%s", l1.digest, l1.diffID, l2.digest, l2.diffID)
	}
}
