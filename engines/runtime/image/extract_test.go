package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// layerTar writes the entries (header and, for regular files, content) as
// an uncompressed tar.
func layerTar(t *testing.T, entries []*tar.Header, content map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(content[h.Name]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content[h.Name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestExtractLayerFileTypes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: devices, ownership and trusted.* xattrs")
	}
	mtime := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	entries := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: mtime},
		{Typeflag: tar.TypeDir, Name: "usr/bin/", Mode: 0o750, Uid: 1000, Gid: 1001, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "usr/bin/su", Mode: 0o4755, ModTime: mtime,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "SCHILY.xattr.user.note": "hi"}},
		{Typeflag: tar.TypeLink, Name: "usr/bin/su-again", Linkname: "usr/bin/su"},
		{Typeflag: tar.TypeSymlink, Name: "usr/bin/passwd-link", Linkname: "/etc/passwd", ModTime: mtime},
		{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime},
		{Typeflag: tar.TypeBlock, Name: "dev/loop9", Mode: 0o660, Devmajor: 7, Devminor: 9, ModTime: mtime},
		{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, Uid: 7, Gid: 8, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "etc/replaced", Mode: 0o644, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "etc/replaced", Mode: 0o600, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: ".wh.gone", ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "var/.wh..wh..opq", ModTime: mtime},
	}
	r := layerTar(t, entries, map[string]string{"usr/bin/su": "#!/bin/sh\n", "etc/replaced": "second\n"})
	dir := t.TempDir()
	if err := extractLayer(context.Background(), r, dir); err != nil {
		t.Fatal(err)
	}

	var st unix.Stat_t
	stat := func(p string) *unix.Stat_t {
		t.Helper()
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	if s := stat("usr/bin/su"); s.Mode&0o7777 != 0o4755 || s.Nlink != 2 || s.Mtim.Sec != mtime.Unix() {
		t.Errorf("usr/bin/su: mode %o nlink %d mtime %d", s.Mode, s.Nlink, s.Mtim.Sec)
	}
	if s := stat("usr/bin"); s.Mode&0o777 != 0o750 || s.Uid != 1000 || s.Gid != 1001 || s.Mtim.Sec != mtime.Unix() {
		t.Errorf("usr/bin: mode %o owner %d:%d mtime %d", s.Mode, s.Uid, s.Gid, s.Mtim.Sec)
	}
	if s := stat("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != unix.Mkdev(1, 3) || s.Mode&0o777 != 0o666 {
		t.Errorf("dev/null: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if s := stat("dev/loop9"); s.Mode&unix.S_IFMT != unix.S_IFBLK || s.Rdev != unix.Mkdev(7, 9) {
		t.Errorf("dev/loop9: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if s := stat("run/fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO || s.Uid != 7 || s.Gid != 8 {
		t.Errorf("run/fifo: mode %o owner %d:%d", s.Mode, s.Uid, s.Gid)
	}
	if s := stat("usr/bin/passwd-link"); s.Mode&unix.S_IFMT != unix.S_IFLNK || s.Mtim.Sec != mtime.Unix() {
		t.Errorf("symlink: mode %o mtime %d", s.Mode, s.Mtim.Sec)
	}
	if s := stat("gone"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout gone: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "etc/replaced")); err != nil || string(data) != "second\n" {
		t.Errorf("etc/replaced = %q, %v; the later entry wins", data, err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "usr/bin/su"), "user.note", buf); err != nil || string(buf[:n]) != "hi" {
		t.Errorf("user.note xattr = %q, %v", buf[:n], err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(dir, "var"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("var opaque xattr = %q, %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh.gone")); !os.IsNotExist(err) {
		t.Errorf(".wh.gone extracted as a file: %v", err)
	}
}

func TestCleanEntryName(t *testing.T) {
	for in, want := range map[string]string{
		"./":          ".",
		"/etc/passwd": "etc/passwd",
		"./a/../b":    "b",
		"a//b/":       "a/b",
		"../x":        "",
		"a/../../x":   "",
		"/../x":       "",
		"..":          "",
	} {
		got, err := cleanEntryName(in)
		if want == "" {
			if err == nil {
				t.Errorf("cleanEntryName(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
