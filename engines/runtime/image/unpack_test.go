package image_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// requireRoot skips a test that needs root (mknod, chown, trusted xattrs,
// mount) when not run as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: devices, ownership, trusted.* xattrs and overlay mounts")
	}
}

func TestUnpackLayers(t *testing.T) {
	requireRoot(t)
	s, _, img := busyboxStore(t)
	lower, diffIDs, err := s.Unpack(context.Background(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Inspect(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(lower) != 2 || diffIDs[0] != in.RootFS.Layers[1] || diffIDs[1] != in.RootFS.Layers[0] {
		t.Fatalf("Unpack = %v, %v; want the top layer (%s) first", lower, diffIDs, in.RootFS.Layers[1])
	}
	for i, d := range lower {
		if filepath.Base(d) != strings.TrimPrefix(diffIDs[i], "sha256:") {
			t.Fatalf("lowerdir %s is not named by diff_id %s", d, diffIDs[i])
		}
	}
	top, bottom := lower[0], lower[1]

	if target, err := os.Readlink(filepath.Join(bottom, "bin/sh")); err != nil || target != "busybox" {
		t.Fatalf("bin/sh -> %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(bottom, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("tmp mode %v, %v; want sticky 0777", fi.Mode(), err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, imagetest.WhiteoutVictim), &st); err != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout of %s: mode %o rdev %d, %v; want a 0/0 character device", imagetest.WhiteoutVictim, st.Mode, st.Rdev, err)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(top, imagetest.OpaqueDir), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque xattr on %s: %q, %v", imagetest.OpaqueDir, buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(top, imagetest.OpaqueDir, ".wh..wh..opq")); !os.IsNotExist(err) {
		t.Fatalf("the opaque marker was extracted as a file: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(bottom, "bin/busybox")); err != nil || !fi.ModTime().Equal(imagetest.Created) {
		t.Fatalf("bin/busybox mtime: %v, %v", fi, err)
	}

	// A second Unpack reuses the cache.
	again, _, err := s.Unpack(context.Background(), img.ID)
	if err != nil || again[0] != top || again[1] != bottom {
		t.Fatalf("second Unpack = %v, %v", again, err)
	}
}

func TestUnpackConcurrent(t *testing.T) {
	requireRoot(t)
	s, _, _ := busyboxStore(t)
	var wg sync.WaitGroup
	results := make([][]string, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _, errs[i] = s.Unpack(context.Background(), "busybox")
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || strings.Join(results[i], ":") != strings.Join(results[0], ":") {
			t.Fatalf("Unpack %d = %v, %v; want %v", i, results[i], errs[i], results[0])
		}
	}
	entries, err := os.ReadDir(filepath.Dir(results[0][0]))
	if err != nil || len(entries) != 2 {
		t.Fatalf("unpack dir holds %v, %v; want the two layers and no temporary directory", entries, err)
	}
}

// TestUnpackOverlay mounts the unpacked layers as overlayfs does for a
// container and checks what the container sees.
func TestUnpackOverlay(t *testing.T) {
	requireRoot(t)
	s, _, _ := busyboxStore(t)
	lower, _, err := s.Unpack(context.Background(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	for _, p := range []string{"bin/sh", "bin/busybox", imagetest.Survivor, imagetest.OpaqueKept} {
		if _, err := os.Stat(filepath.Join(merged, p)); err != nil {
			t.Errorf("%s missing in the container's view: %v", p, err)
		}
	}
	for _, p := range []string{imagetest.WhiteoutVictim, imagetest.OpaqueHidden} {
		if _, err := os.Lstat(filepath.Join(merged, p)); !os.IsNotExist(err) {
			t.Errorf("%s visible in the container's view (%v): the upper layer deletes it", p, err)
		}
	}
	out, err := exec.Command("chroot", merged, "/bin/sh", "-c", "echo hello from $(id -u)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello from 0" {
		t.Fatalf("sh in the rootfs: %q, %v", out, err)
	}
}

// hostileStore imports an image whose only layer is files.
func hostileStore(t *testing.T, files []imagetest.File) *image.Store {
	t.Helper()
	s, _ := newStore(t)
	archive := filepath.Join(t.TempDir(), "hostile.tar")
	imagetest.WriteArchive(t, archive, "hostile", imagetest.ImageOf(t, imagetest.Layer(t, files)))
	importFile(t, s, archive, "")
	return s
}

func TestUnpackRefusesEscape(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	for name, files := range map[string][]imagetest.File{
		"dot-dot": {{Name: "../escape", Mode: 0o644, Data: []byte("x")}},
		"nested dot-dot": {
			{Name: "a/", Mode: 0o755},
			{Name: "a/../../escape", Mode: 0o644, Data: []byte("x")},
		},
		"through a symlink": {
			{Name: "evil", Link: outside},
			{Name: "evil/escape", Mode: 0o644, Data: []byte("x")},
		},
		"through a relative symlink": {
			{Name: "evil", Link: "../../../../../../../../" + outside},
			{Name: "evil/escape", Mode: 0o644, Data: []byte("x")},
		},
		"hardlink out": {
			{Name: "link", Hardlink: "../../../../etc/passwd"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := hostileStore(t, files)
			_, _, err := s.Unpack(context.Background(), "hostile")
			if err == nil {
				t.Fatal("Unpack of a hostile layer succeeded")
			}
			t.Log(err)
			if _, err := os.Lstat(filepath.Join(outside, "escape")); !os.IsNotExist(err) {
				t.Fatalf("the layer wrote outside its directory: %v", err)
			}
			if rep, err := s.Prune(nil); err != nil || rep.Layers != 0 {
				t.Fatalf("a failed extraction left a directory behind: %+v, %v", rep, err)
			}
		})
	}
}

func TestUnpackAbsoluteSymlinkIsData(t *testing.T) {
	requireRoot(t)
	s := hostileStore(t, []imagetest.File{
		{Name: "etc/", Mode: 0o755},
		{Name: "etc/mtab", Link: "/proc/self/mounts"},
	})
	lower, _, err := s.Unpack(context.Background(), "hostile")
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(lower[0], "etc/mtab")); err != nil || target != "/proc/self/mounts" {
		t.Fatalf("etc/mtab -> %q, %v", target, err)
	}
}
