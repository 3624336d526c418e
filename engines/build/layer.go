package build

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// A layer is written reproducibly: entries in lexical order, every time
// set to the build's epoch (SOURCE_DATE_EPOCH, the Unix epoch unless a
// build arg sets it), no user or group names, and ownership as given
// (numbers only). The same files give the same bytes, so the same
// digests, wherever they are built.

// layerWriter writes one layer: a tar stream, gzipped into a file, with
// the digests of both forms computed as it goes.
type layerWriter struct {
	f       *os.File
	tw      *tar.Writer
	gz      *gzip.Writer
	diff    hash.Hash
	comp    hash.Hash
	n       *countWriter
	epoch   time.Time
	entries int
	seen    map[string]bool
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newLayerWriter(path string, epoch time.Time) (*layerWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	lw := &layerWriter{f: f, diff: sha256.New(), comp: sha256.New(), epoch: epoch, seen: map[string]bool{}}
	lw.n = &countWriter{w: io.MultiWriter(f, lw.comp)}
	lw.gz, _ = gzip.NewWriterLevel(lw.n, gzip.BestSpeed)
	lw.tw = tar.NewWriter(io.MultiWriter(lw.gz, lw.diff))
	return lw, nil
}

// add writes one entry, its times set to the epoch. A name written twice
// keeps its first entry (a later source of a COPY does not repeat a
// parent directory).
func (lw *layerWriter) add(hdr *tar.Header, body io.Reader) error {
	name := hdr.Name
	if lw.seen[name] {
		return nil
	}
	lw.seen[name] = true
	hdr.ModTime = lw.epoch
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatPAX
	hdr.PAXRecords = nil
	if hdr.Typeflag != tar.TypeReg {
		hdr.Size = 0
	}
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer entry %s: %w", name, err)
	}
	if body != nil && hdr.Size > 0 {
		if _, err := io.CopyN(lw.tw, body, hdr.Size); err != nil {
			return fmt.Errorf("layer entry %s: %w", name, err)
		}
	}
	lw.entries++
	return nil
}

// finish closes the streams and returns the layer.
func (lw *layerWriter) finish() (*fileLayer, error) {
	err := lw.tw.Close()
	if err == nil {
		err = lw.gz.Close()
	}
	if err == nil {
		err = lw.f.Sync()
	}
	if cerr := lw.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	return &fileLayer{
		path:    lw.f.Name(),
		digest:  v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(lw.comp.Sum(nil))},
		diffID:  v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(lw.diff.Sum(nil))},
		size:    lw.n.n,
		entries: lw.entries,
	}, nil
}

// fileLayer is a layer written by a layerWriter (a v1.Layer).
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	entries        int
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{gz, f}, nil
}

type readCloser struct {
	io.Reader
	f *os.File
}

func (r readCloser) Close() error { return r.f.Close() }

// dirHeader is a directory entry of a layer.
func dirHeader(name string, mode fs.FileMode, uid, gid int) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/", Mode: int64(mode.Perm()), Uid: uid, Gid: gid}
}

// fileHeader describes the file at p (lstat'ed as fi) as a layer entry
// called name, with its own mode, owner and, for a symlink, target.
func fileHeader(p, name string, fi fs.FileInfo) (*tar.Header, error) {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		link = l
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name = strings.TrimSuffix(name, "/") + "/"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		}
	}
	return hdr, nil
}

// diffUpper writes the changes an overlayfs upper directory holds as layer
// entries, as OCI image layers spell them: a whiteout (a 0/0 character
// device) becomes .wh.NAME, an opaque directory gets .wh..wh..opq, hard
// links within the layer stay hard links. skip names paths (relative, no
// leading /) that are not part of the image (mount points the step made).
func diffUpper(lw *layerWriter, upper string, skip map[string]bool) error {
	links := map[[2]uint64]string{}
	return filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if skip[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if fi.Mode()&fs.ModeCharDevice != 0 && st != nil && st.Rdev == 0 {
			dir, base := path.Split(rel)
			return lw.add(&tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh." + base}, nil)
		}
		hdr, err := fileHeader(p, rel, fi)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if err := lw.add(hdr, nil); err != nil {
				return err
			}
			if v, err := getXattr(p, "trusted.overlay.opaque"); err == nil && v == "y" {
				return lw.add(&tar.Header{Typeflag: tar.TypeReg, Name: rel + "/.wh..wh..opq"}, nil)
			}
			return nil
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
					return lw.add(hdr, nil)
				}
				links[key] = rel
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return lw.add(hdr, f)
		default:
			return lw.add(hdr, nil)
		}
	})
}

func getXattr(p, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
