package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// tgz packs files (path → content) as a gzipped tar.
func tgz(t *testing.T, fl map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range fl {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReleaseTarball reads a release tarball as bosh create-release
// --tarball writes it (jobs/JOB.tgz, packages/PKG.tgz inside) and finds
// the same jobs, packages and fingerprints as the directory it came from.
func TestReleaseTarball(t *testing.T) {
	dirFiles := map[string]string{
		"release.MF":                     "name: web\nversion: 2\n",
		"jobs/httpd/spec":                "name: httpd\ntemplates: {index.erb: htdocs/index.html}\npackages: [lib]\n",
		"jobs/httpd/templates/index.erb": "hi\n",
		"packages/lib/spec":              "name: lib\nfiles: [lib.c]\n",
		"packages/lib/packaging":         "true\n",
		"src/lib.c":                      "int lib;\n",
	}
	dir := t.TempDir()
	for name, content := range dirFiles {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fromDir, err := readRelease(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseRelease(fromDir)
	if err != nil {
		t.Fatal(err)
	}
	outer := map[string]string{
		"release.MF":       dirFiles["release.MF"],
		"jobs/httpd.tgz":   string(tgz(t, map[string]string{"spec": dirFiles["jobs/httpd/spec"], "templates/index.erb": "hi\n"})),
		"packages/lib.tgz": string(tgz(t, map[string]string{"spec": dirFiles["packages/lib/spec"], "packaging": "true\n", "lib.c": "int lib;\n"})),
	}
	path := filepath.Join(t.TempDir(), "web-2.tgz")
	if err := os.WriteFile(path, tgz(t, outer), 0o644); err != nil {
		t.Fatal(err)
	}
	fromTgz, err := readRelease(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRelease(fromTgz)
	if err != nil {
		t.Fatal(err)
	}
	if got.rel.Name != "web" || got.rel.Version != "2" {
		t.Errorf("release %s/%s", got.rel.Name, got.rel.Version)
	}
	if g, w := got.rel.Jobs["httpd"].Fingerprint, want.rel.Jobs["httpd"].Fingerprint; g != w {
		t.Errorf("job fingerprint from the tarball %s, from the directory %s", g, w)
	}
	if g, w := got.rel.Packages["lib"].Fingerprint, want.rel.Packages["lib"].Fingerprint; g != w {
		t.Errorf("package fingerprint from the tarball %s, from the directory %s", g, w)
	}
	// A path leaving the archive is refused.
	bad := filepath.Join(t.TempDir(), "bad.tgz")
	if err := os.WriteFile(bad, tgz(t, map[string]string{"../escape": "x"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readRelease(bad); err == nil {
		t.Errorf("a tarball with ../escape was read")
	}
}
