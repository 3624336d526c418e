package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// whiteoutPrefix marks an OCI/docker whiteout entry: ".wh.NAME" deletes
	// NAME of the layers below.
	whiteoutPrefix = ".wh."
	// opaqueWhiteout marks a directory whose lower content is hidden.
	opaqueWhiteout = ".wh..wh..opq"
	// paxXattrPrefix prefixes the PAX records that carry extended attributes.
	paxXattrPrefix = "SCHILY.xattr."
)

// extractLayer writes the uncompressed layer tar r into dir, converting
// whiteouts to overlayfs form (a 0/0 character device for ".wh.NAME", the
// xattr trusted.overlay.opaque=y for ".wh..wh..opq"). Every path is resolved
// through an os.Root on dir, so no entry — "../x", a path through a symlink
// pointing outside, a hardlink to outside — can touch anything outside dir.
// Ownership, devices and trusted xattrs need root.
func extractLayer(ctx context.Context, r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open layer dir: %w", err)
	}
	defer root.Close()

	type dirTimes struct {
		name  string
		atime time.Time
		mtime time.Time
	}
	var dirs []dirTimes
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if err := extractEntry(root, tr, hdr, name); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTimes{name: name, atime: hdr.AccessTime, mtime: hdr.ModTime})
		}
	}
	// A directory's mtime changes as entries are written into it: set them
	// last, deepest first.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := setTimes(root, d.name, d.atime, d.mtime); err != nil {
			return fmt.Errorf("extract %s: set times: %w", d.name, err)
		}
	}
	return nil
}

// extractEntry writes one tar entry at name (clean, relative to root).
func extractEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string) error {
	base := path.Base(name)
	parent := path.Dir(name)
	if name != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	if base == opaqueWhiteout {
		return inParent(root, parent+"/.", func(fd int, base string) error {
			return setXattr(fd, base, "trusted.overlay.opaque", "y")
		})
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		target := path.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
		if err := root.RemoveAll(target); err != nil {
			return err
		}
		return inParent(root, target, func(fd int, base string) error {
			return unix.Mknodat(fd, base, unix.S_IFCHR, 0)
		})
	}

	// An entry replaces what an earlier entry of the layer put there,
	// except that a directory stays a directory.
	if fi, err := root.Lstat(name); err == nil && name != "." {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := root.RemoveAll(name); err != nil {
				return err
			}
		}
	}

	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeGNUSparse:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		// The target is data: it is never followed while extracting.
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := cleanEntryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink: %w", err)
		}
		// The link's own metadata is its target's.
		return root.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := inParent(root, name, func(fd int, base string) error {
			return unix.Mknodat(fd, base, kind|0o600, int(dev))
		}); err != nil {
			return err
		}
	default:
		// Other types (GNU long names are folded by archive/tar; volume
		// labels and the like) carry nothing for a root filesystem.
		return nil
	}

	if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid and setgid.
		if err := root.Chmod(name, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for key, value := range hdr.PAXRecords {
		if attr, ok := strings.CutPrefix(key, paxXattrPrefix); ok {
			if err := inParent(root, name, func(fd int, base string) error {
				return setXattr(fd, base, attr, value)
			}); err != nil {
				return err
			}
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		return setTimes(root, name, hdr.AccessTime, hdr.ModTime)
	}
	return nil
}

// inParent calls fn with a descriptor of name's parent directory, opened
// through root, and name's last element: the *at system calls then act
// inside root without following a symlink at the last element.
func inParent(root *os.Root, name string, fn func(fd int, base string) error) error {
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn(int(dir.Fd()), path.Base(name))
}

// setXattr sets the extended attribute on base in the directory fd without
// following a symlink.
func setXattr(fd int, base, attr, value string) error {
	var err error
	if base == "." {
		err = unix.Fsetxattr(fd, attr, []byte(value), 0)
	} else {
		// The magic link of fd is followed as a directory; base is not.
		err = unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(fd)+"/"+base, attr, []byte(value), 0)
	}
	if err != nil {
		return fmt.Errorf("set xattr %s: %w", attr, err)
	}
	return nil
}

// setTimes sets name's access and modification times without following a
// symlink; a zero access time is taken as the modification time.
func setTimes(root *os.Root, name string, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return inParent(root, name, func(fd int, base string) error {
		if base == "." || name == "." {
			return unix.UtimesNanoAt(fd, ".", ts, 0)
		}
		return unix.UtimesNanoAt(fd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}
