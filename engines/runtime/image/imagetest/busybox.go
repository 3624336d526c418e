// Package imagetest builds container images for tests from parts of this
// machine: an image FROM scratch with Debian's static busybox, written as a
// docker-archive the image store imports.
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is where Debian's busybox-static package installs busybox.
const BusyboxPath = "/bin/busybox"

// Created is the fixed creation time of the images built here, so their
// ids are the same on every run.
var Created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Applets are the busybox applets BusyboxImage links in /bin.
var Applets = []string{
	"sh", "echo", "cat", "ls", "sleep", "true", "false", "httpd", "ps", "top",
	"env", "id", "hostname", "seq", "yes", "head", "dd", "wget", "mkdir", "rm",
	"touch", "test", "grep", "kill", "mount", "stat", "uname", "wc", "printf", "nc",
}

// The files of the two layers that show how layers stack: the lower layer
// has both, the upper one whites out WhiteoutVictim and makes OpaqueDir
// opaque (hiding OpaqueHidden, adding OpaqueKept).
const (
	// WhiteoutVictim is in the lower layer only; the upper one deletes it.
	WhiteoutVictim = "etc/removed-by-upper"
	// Survivor is in the lower layer and stays visible.
	Survivor = "etc/kept"
	// OpaqueDir is a directory the upper layer makes opaque.
	OpaqueDir = "opt/data"
	// OpaqueHidden is in OpaqueDir in the lower layer, hidden by the upper.
	OpaqueHidden = "opt/data/lower-only"
	// OpaqueKept is in OpaqueDir in the upper layer.
	OpaqueKept = "opt/data/upper-only"
)

// RequireBusybox skips the test when /bin/busybox is missing, naming the
// Debian package that brings it; with CI=true it fails instead, since CI
// must install it.
func RequireBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (%v): install Debian's busybox-static package", BusyboxPath, err)
		}
		t.Skipf("%s is missing: install Debian's busybox-static package to run this test", BusyboxPath)
	}
}

// BusyboxImage builds the test image: a lower layer with /bin/busybox, its
// applets as symlinks, /etc, /tmp and the files named by the constants
// above, and an upper layer with the whiteouts and extra (path → content,
// paths relative to /, written with mode 0644; a path ending in "/" makes
// a directory). Config: Cmd ["sh"], Env PATH=/bin:/usr/bin, created at
// Created, linux/amd64.
func BusyboxImage(t testing.TB, extra map[string]string) v1.Image {
	t.Helper()
	RequireBusybox(t)
	img, err := buildBusybox(extra)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WriteBusybox writes BusyboxImage(extra) to path as a docker-archive
// named tag ("busybox:latest" if empty), for programs that are not tests
// (the benchmark, `make busybox-image`).
func WriteBusybox(path, tag string, extra map[string]string) error {
	img, err := buildBusybox(extra)
	if err != nil {
		return err
	}
	return writeArchive(path, tag, img)
}

func buildBusybox(extra map[string]string) (v1.Image, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read %s (Debian's busybox-static package): %w", BusyboxPath, err)
	}

	lower := []File{
		{Name: "bin/", Mode: 0o755},
		{Name: "bin/busybox", Mode: 0o755, Data: bb},
		{Name: "etc/", Mode: 0o755},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{Name: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Name: WhiteoutVictim, Mode: 0o644, Data: []byte("lower\n")},
		{Name: Survivor, Mode: 0o644, Data: []byte("lower\n")},
		{Name: "opt/", Mode: 0o755},
		{Name: OpaqueDir + "/", Mode: 0o755},
		{Name: OpaqueHidden, Mode: 0o644, Data: []byte("lower\n")},
		{Name: "root/", Mode: 0o700},
		{Name: "tmp/", Mode: 0o1777},
		{Name: "usr/", Mode: 0o755},
		{Name: "usr/bin/", Mode: 0o755},
	}
	for _, a := range Applets {
		lower = append(lower, File{Name: "bin/" + a, Link: "busybox"})
	}
	upper := []File{
		{Name: "etc/.wh." + path.Base(WhiteoutVictim)},
		{Name: OpaqueDir + "/", Mode: 0o755},
		{Name: OpaqueDir + "/.wh..wh..opq"},
		{Name: OpaqueKept, Mode: 0o644, Data: []byte("upper\n")},
	}
	names := make([]string, 0, len(extra))
	for p := range extra {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		f := File{Name: p, Mode: 0o644, Data: []byte(extra[p])}
		if p[len(p)-1] == '/' {
			f.Mode = 0o755
		}
		upper = append(upper, f)
	}

	cfg := &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: Created},
		Config: v1.Config{
			Cmd: []string{"sh"},
			Env: []string{"PATH=/bin:/usr/bin"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("build image config: %w", err)
	}
	for i, files := range [][]File{lower, upper} {
		l, err := buildLayer(files)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: l,
			History: v1.History{
				Created:   v1.Time{Time: Created},
				CreatedBy: []string{"busybox and applets", "whiteouts and extra files"}[i],
			},
		})
		if err != nil {
			return nil, fmt.Errorf("build image: %w", err)
		}
	}
	return img, nil
}

// BusyboxArchive writes BusyboxImage(t, extra) to path as a docker-archive
// (what `docker save` writes) named tag ("busybox:latest" if empty).
func BusyboxArchive(t testing.TB, path, tag string, extra map[string]string) {
	t.Helper()
	WriteArchive(t, path, tag, BusyboxImage(t, extra))
}

// WriteArchive writes img to path as a docker-archive named tag
// ("busybox:latest" if empty).
func WriteArchive(t testing.TB, path, tag string, img v1.Image) {
	t.Helper()
	if err := writeArchive(path, tag, img); err != nil {
		t.Fatal(err)
	}
}

func writeArchive(path, tag string, img v1.Image) error {
	if tag == "" {
		tag = "busybox:latest"
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image name %q: %w", tag, err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("write docker-archive %s: %w", path, err)
	}
	return nil
}

// File is one entry of a layer built by Layer.
type File struct {
	// Name is the path in the layer; a trailing "/" makes a directory.
	Name string
	// Mode is the permission bits (and setuid, setgid, sticky).
	Mode int64
	// Data is a regular file's content.
	Data []byte
	// Link, if set, makes a symlink to Link.
	Link string
	// Hardlink, if set, makes a hard link to the layer path Hardlink.
	Hardlink string
}

// Layer builds an uncompressed layer of files, in order, owned by root and
// dated Created. Entries are written as given, so tests can build hostile
// layers too ("../escape").
func Layer(t testing.TB, files []File) v1.Layer {
	t.Helper()
	l, err := buildLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func buildLayer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: Created, Format: tar.FormatPAX}
		switch {
		case f.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Link, 0o777
		case f.Hardlink != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, f.Hardlink
		case f.Name[len(f.Name)-1] == '/':
			hdr.Typeflag = tar.TypeDir
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("build layer: %s: %w", f.Name, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("build layer: %s: %w", f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	return l, nil
}

// ImageOf builds a linux/amd64 image of the given layers, bottom first,
// created at Created.
func ImageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: Created},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatalf("build image config: %v", err)
	}
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	return img
}
