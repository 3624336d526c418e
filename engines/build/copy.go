package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/cairnhq/cairn/engines/runtime/oci"
)

// view mounts img's file tree read-only under the build's directory and
// returns the mount point and how to release it.
func (b *builder) view(ctx context.Context, img v1.Image, name string) (string, func(), error) {
	lower, _, err := b.store.UnpackImage(ctx, img)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(b.work, "view-"+name)
	emptyDir := filepath.Join(b.work, "empty")
	for _, d := range []string{dir, emptyDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", nil, err
		}
	}
	if err := mountOverlay(dir, append(lower, emptyDir), "", ""); err != nil {
		return "", nil, err
	}
	return dir, func() { _ = unmount(dir); _ = os.Remove(dir) }, nil
}

// copySources resolves what a COPY or ADD writes, in the order it writes
// it. from is --from= (a stage or an image), "" for the context.
func (b *builder) copySources(ctx context.Context, st *stage, from string, sd instructions.SourcesAndDest, chmod string, add bool) (*source, []copyEntry, func(), error) {
	var release []func()
	cleanup := func() {
		for i := len(release) - 1; i >= 0; i-- {
			release[i]()
		}
	}
	src := b.ctxSrc
	if from != "" {
		var img v1.Image
		what := "stage " + from
		if j, ok := b.stageRef(from, len(b.df.Stages)); ok && b.stages[j] != nil {
			img = b.stages[j].img
		} else {
			_, i, err := b.store.Image(from)
			if err != nil {
				return nil, nil, cleanup, fmt.Errorf("--from=%s: no stage of that name before this one, and no image: %w", from, err)
			}
			img, what = i, "image "+from
		}
		dir, rel, err := b.view(ctx, img, "from")
		if err != nil {
			return nil, nil, cleanup, err
		}
		release = append(release, rel)
		root, err := os.OpenRoot(dir)
		if err != nil {
			cleanup()
			return nil, nil, nil, err
		}
		release = append(release, func() { root.Close() })
		src = &source{root: root, what: what}
	}
	var mode fs.FileMode
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, nil, cleanup, fmt.Errorf("--chmod=%s: give an octal mode such as 0755", chmod)
		}
		mode = fs.FileMode(m)
	}
	dest := sd.DestPath
	if !path.IsAbs(dest) {
		wd := st.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest) + map[bool]string{true: "/"}[strings.HasSuffix(sd.DestPath, "/") || sd.DestPath == "."]
	}
	destDir := strings.HasSuffix(dest, "/")
	dest = strings.TrimPrefix(path.Clean(dest), "/")
	var entries []copyEntry
	for _, c := range sd.SourceContents {
		d := dest
		if destDir {
			d = path.Join(dest, c.Path)
		}
		e := heredocEntry(d, c.Data)
		if mode != 0 {
			e.mode = mode
		}
		entries = append(entries, e)
	}
	var paths []string
	for _, p := range sd.SourcePaths {
		if add && (strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "git@")) {
			return nil, nil, cleanup, fmt.Errorf("ADD %s: cairn builds have no network, so ADD cannot download; fetch the file into the build context and COPY it", p)
		}
		ps, err := src.expand(p)
		if err != nil {
			return nil, nil, cleanup, err
		}
		paths = append(paths, ps...)
	}
	if len(paths)+len(sd.SourceContents) > 1 && !destDir {
		return nil, nil, cleanup, fmt.Errorf("%s: with several sources the destination must be a directory ending in /", sd.DestPath)
	}
	for _, p := range paths {
		fi, err := src.root.Stat(p)
		if err != nil {
			return nil, nil, cleanup, src.statError(p, err)
		}
		if fi.IsDir() {
			entries = append(entries, copyEntry{dest: dest, dir: true, mode: fileMode(fi, mode)})
			err := src.walk(p, func(rel string, fi fs.FileInfo) error {
				r := strings.TrimPrefix(strings.TrimPrefix(rel, p), "/")
				if p == "." {
					r = rel
				}
				entries = append(entries, copyEntry{dest: path.Join(dest, r), src: rel, fi: fi, dir: fi.IsDir(), mode: fileMode(fi, mode)})
				return nil
			})
			if err != nil {
				return nil, nil, cleanup, err
			}
			continue
		}
		d := dest
		if destDir || b.isDirIn(st, dest) {
			d = path.Join(dest, path.Base(p))
		}
		e := copyEntry{dest: d, src: p, fi: fi, mode: fileMode(fi, mode)}
		if add && src == b.ctxSrc && src.isArchive(p) {
			e.dest, e.archive = dest, true
		}
		entries = append(entries, e)
	}
	return src, entries, cleanup, nil
}

func fileMode(fi fs.FileInfo, chmod fs.FileMode) fs.FileMode {
	if chmod != 0 {
		return chmod
	}
	return fi.Mode().Perm()
}

// isDirIn says whether p (no leading /) is a directory in the stage's
// image, for COPY file /existing-dir.
func (b *builder) isDirIn(st *stage, p string) bool {
	if len(st.cfg.RootFS.DiffIDs) == 0 || p == "" {
		return p == ""
	}
	dir, rel, err := b.view(context.Background(), st.img, "dest")
	if err != nil {
		return false
	}
	defer rel()
	fi, err := os.Stat(filepath.Join(dir, p))
	return err == nil && fi.IsDir()
}

// writeCopy writes a COPY's entries as a layer, with parent directories
// the image lacks.
func (b *builder) writeCopy(st *stage, src *source, entries []copyEntry, chown string) (*fileLayer, error) {
	uid, gid := 0, 0
	var exists func(string) bool = func(string) bool { return false }
	if len(st.cfg.RootFS.DiffIDs) > 0 {
		dir, rel, err := b.view(context.Background(), st.img, "dest")
		if err != nil {
			return nil, err
		}
		defer rel()
		exists = func(p string) bool { _, err := os.Lstat(filepath.Join(dir, p)); return err == nil }
		if chown != "" {
			u, g, _, err := oci.ResolveUser(dir, chown)
			if err != nil {
				return nil, fmt.Errorf("--chown: %w", err)
			}
			uid, gid = int(u), int(g)
		}
	} else if chown != "" {
		u, g, _, err := oci.ResolveUser(b.work, chown)
		if err != nil {
			return nil, fmt.Errorf("--chown: %w", err)
		}
		uid, gid = int(u), int(g)
	}
	lw, err := newLayerWriter(filepath.Join(b.work, fmt.Sprintf("layer-%d.tar.gz", b.n)), b.epoch)
	if err != nil {
		return nil, err
	}
	written := map[string]bool{}
	parents := func(p string) error {
		var chain []string
		for d := path.Dir(p); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			chain = append(chain, d)
		}
		slices.Reverse(chain)
		for _, d := range chain {
			if written[d] || exists(d) {
				continue
			}
			written[d] = true
			if err := lw.add(dirHeader(d, 0o755, uid, gid), nil); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range entries {
		if err := parents(e.dest); err != nil {
			return nil, err
		}
		switch {
		case e.archive:
			if err := b.extractArchive(lw, src, e, parents); err != nil {
				return nil, err
			}
		case e.data != nil:
			written[e.dest] = true
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.dest, Mode: int64(e.mode), Size: int64(len(e.data)), Uid: uid, Gid: gid}
			if err := lw.add(hdr, strings.NewReader(string(e.data))); err != nil {
				return nil, err
			}
		case e.fi == nil: // a directory the COPY creates
			if e.dest == "" || written[e.dest] || exists(e.dest) {
				continue
			}
			written[e.dest] = true
			if err := lw.add(dirHeader(e.dest, e.mode, uid, gid), nil); err != nil {
				return nil, err
			}
		default:
			written[e.dest] = true
			hdr, err := tar.FileInfoHeader(e.fi, "")
			if err != nil {
				return nil, err
			}
			hdr.Name, hdr.Uid, hdr.Gid = e.dest, uid, gid
			hdr.Mode = int64(e.mode)
			var body io.Reader
			switch {
			case e.fi.IsDir():
				hdr.Name += "/"
			case e.fi.Mode()&fs.ModeSymlink != 0:
				l, err := src.root.Readlink(e.src)
				if err != nil {
					return nil, err
				}
				hdr.Linkname = l
				hdr.Mode = int64(e.fi.Mode().Perm())
			case e.fi.Mode().IsRegular():
				f, err := src.root.Open(e.src)
				if err != nil {
					return nil, src.statError(e.src, err)
				}
				defer f.Close()
				body = f
			default:
				continue // sockets, fifos and devices of a context are not copied
			}
			if err := lw.add(hdr, body); err != nil {
				return nil, err
			}
		}
	}
	return lw.finish()
}

// extractArchive writes the entries of a local tar ADD extracts under
// e.dest, refusing names that climb out of it.
func (b *builder) extractArchive(lw *layerWriter, src *source, e copyEntry, parents func(string) error) error {
	f, err := src.root.Open(e.src)
	if err != nil {
		return src.statError(e.src, err)
	}
	defer f.Close()
	r, err := archiveReader(f)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", e.src, err)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ADD %s: %w", e.src, err)
		}
		name := path.Clean("/" + hdr.Name)
		if strings.Contains(hdr.Name, "..") && path.Clean(hdr.Name) != strings.TrimPrefix(name, "/") {
			return fmt.Errorf("ADD %s: the entry %q climbs out of its directory: refused", e.src, hdr.Name)
		}
		hdr.Name = strings.TrimPrefix(path.Join(e.dest, name), "/")
		if hdr.Name == "" {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(path.Join(e.dest, path.Clean("/"+hdr.Linkname)), "/")
		}
		if err := parents(strings.TrimSuffix(hdr.Name, "/")); err != nil {
			return err
		}
		if err := lw.add(hdr, tr); err != nil {
			return err
		}
	}
}
