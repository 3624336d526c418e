package runtime

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/runtime/cgstat"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) imageVerbs() []engines.Verb {
	ref := []dsl.Arg{{Name: "IMAGE", Required: true, Help: "an image name (busybox, busybox:1.36) or id"}}
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "image import",
			Access:  dsl.AccessHost,
			Summary: "add images from a docker-archive, an oci-archive or an OCI layout directory",
			Help: "image import FILE [tag=NAME] reads what docker save, skopeo copy or podman save wrote.\n" +
				"FILE is opened with your own permissions (the daemon reads it as you). Every layer is\n" +
				"checked before anything is stored; a corrupt archive names the layer and changes nothing.\n\n" +
				"  image import /tmp/busybox.tar tag=busybox",
			Args:    []dsl.Arg{{Name: "FILE", Required: true, Help: "the archive or layout directory"}},
			Options: []dsl.Option{{Name: "tag", Meta: "NAME", Help: "the name of the imported image (default: the names in the archive)"}},
		}, Run: m.runImageImport},
		{Spec: dsl.Spec{
			Verb:    "image export",
			Access:  dsl.AccessRead,
			Summary: "write an image as an oci-archive or a docker-archive",
			Help: "image export IMAGE to=FILE [format=oci-archive|docker-archive] writes FILE with your own\n" +
				"permissions (the daemon writes it as you).\n\n  image export busybox to=/tmp/bb.tar format=docker-archive",
			Args: ref,
			Options: []dsl.Option{
				{Name: "to", Meta: "FILE", Help: "the file to write"},
				{Name: "format", Help: "oci-archive (default) or docker-archive"},
			},
		}, Run: m.runImageExport},
		{Spec: dsl.Spec{
			Verb:    "image list",
			Access:  dsl.AccessRead,
			Summary: "the images in the store, as docker images",
		}, Run: m.runImageList},
		{Spec: dsl.Spec{
			Verb:    "image inspect",
			Access:  dsl.AccessRead,
			Summary: "an image's configuration, as docker image inspect",
			Args:    ref,
		}, Run: m.runImageInspect},
		{Spec: dsl.Spec{
			Verb:    "image history",
			Access:  dsl.AccessRead,
			Summary: "an image's layers and the steps that made them, newest first",
			Args:    ref,
		}, Run: m.runImageHistory},
		{Spec: dsl.Spec{
			Verb:    "image tag",
			Access:  dsl.AccessWrite,
			Summary: "give an image another name",
			Args:    []dsl.Arg{{Name: "SOURCE", Required: true}, {Name: "TARGET", Required: true}},
		}, Run: m.runImageTag},
		{Spec: dsl.Spec{
			Verb:    "image rm",
			Access:  dsl.AccessHost,
			Summary: "untag or remove an image",
			Help:    "image rm IMAGE removes a name; the image goes when its last name does, or at once when named\nby id. An image a container uses is refused unless force.",
			Args:    ref,
			Flags:   []dsl.Flag{{Name: "force", Help: "remove it even while containers use it"}},
		}, Run: m.runImageRm},
		{Spec: dsl.Spec{
			Verb:    "image prune",
			Access:  dsl.AccessHost,
			Summary: "delete blobs and unpacked layers no image or container uses",
		}, Run: m.runImagePrune},
	}
}

func (m *module) cred(actor journal.Actor) ascaller.Cred {
	return ascaller.Cred{UID: actor.UID, GID: actor.GID, Groups: actor.Groups}
}

func (m *module) runImageImport(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["FILE"]
	tag := ""
	if t, ok := st.Opt("tag"); ok {
		tag = t.Text
	}
	if !filepath.IsAbs(w.Text) {
		return engines.Errorf(wire.InvalidArgument, w, "image import %s: give an absolute path (the daemon opens it, as you)", w.Text)
	}
	var f *os.File
	var isDir bool
	if err := ascaller.Do(m.cred(r.Actor()), func() error {
		var err error
		if f, err = os.Open(w.Text); err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		isDir = fi.IsDir()
		return nil
	}); err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "image import %s: %v", w.Text, err)
	}
	defer f.Close()
	var src io.Reader = f
	if isDir {
		// An OCI layout directory goes in as the oci-archive it would be,
		// read as the caller, file by file.
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(ascaller.Do(m.cred(r.Actor()), func() error { return tarDir(pw, w.Text) }))
		}()
		defer pr.Close()
		src = pr
	}
	imgs, err := m.images.Import(ctx, src, tag)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "image import %s: %v", w.Text, err)
	}
	for _, img := range imgs {
		if err := m.record(ctx, r.Actor(), "image.import", img.ID, map[string]any{"id": img.ID, "names": img.Names, "digest": img.Digest, "size": img.Size, "source": w.Text}); err != nil {
			return err
		}
		if err := r.Row(map[string]any{"id": img.ID, "names": img.Names, "size": img.Size}); err != nil {
			return err
		}
	}
	return nil
}

// tarDir writes dir as a tar stream.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func (m *module) runImageExport(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	to, ok := st.Opt("to")
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "image export: give the file to write: to=FILE")
	}
	format := "oci-archive"
	if w, ok := st.Opt("format"); ok {
		if w.Text != "oci-archive" && w.Text != "docker-archive" {
			return engines.Errorf(wire.InvalidArgument, w, "format=%s: the format is oci-archive or docker-archive", w.Text)
		}
		format = w.Text
	}
	ref := st.Args["IMAGE"]
	if _, err := m.images.Resolve(ref.Text); err != nil {
		return engines.Errorf(wire.NotFound, ref, "%v", err)
	}
	if !filepath.IsAbs(to.Text) {
		return engines.Errorf(wire.InvalidArgument, to, "image export: to=%s: give an absolute path (the daemon writes it, as you)", to.Text)
	}
	var f *os.File
	if err := ascaller.Do(m.cred(r.Actor()), func() error {
		var err error
		f, err = os.OpenFile(to.Text, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		return err
	}); err != nil {
		return engines.Errorf(wire.InvalidArgument, to, "image export: %v", err)
	}
	if err := m.images.Export(ctx, ref.Text, f, format); err != nil {
		f.Close()
		return fmt.Errorf("image export %s: %w", ref.Text, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image export: write %s: %w", to.Text, err)
	}
	fi, _ := os.Stat(to.Text)
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	return r.Row(map[string]any{"image": ref.Text, "file": to.Text, "format": format, "bytes": size})
}

func (m *module) runImageList(ctx context.Context, r engines.Request) error {
	imgs, err := m.images.List()
	if err != nil {
		return err
	}
	for _, img := range imgs {
		names := img.Names
		if len(names) == 0 {
			names = []string{"<none>:<none>"}
		}
		for _, n := range names {
			repo, tag := n, "<none>"
			if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
				repo, tag = n[:i], n[i+1:]
			}
			if err := r.Row(imageRow{Repository: repo, Tag: tag, ImageID: shortID(img.ID),
				Created: ago(img.Created) + " ago", Size: cgstat.HumanSize(float64(img.Size))}); err != nil {
				return err
			}
		}
	}
	return nil
}

// imageRow is a row of image list, in docker images' column order.
type imageRow struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	ImageID    string `json:"image_id"`
	Created    string `json:"created"`
	Size       string `json:"size"`
}

// shortID is an image id as docker images prints it: 12 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (m *module) runImageInspect(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["IMAGE"]
	in, err := m.images.Inspect(w.Text)
	if err != nil {
		return engines.Errorf(wire.NotFound, w, "%v", err)
	}
	return r.Row(in)
}

func (m *module) runImageHistory(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["IMAGE"]
	h, err := m.images.History(w.Text)
	if err != nil {
		return engines.Errorf(wire.NotFound, w, "%v", err)
	}
	for _, row := range h {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runImageTag(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	src, dst := st.Args["SOURCE"], st.Args["TARGET"]
	img, err := m.images.Tag(src.Text, dst.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, dst, "%v", err)
	}
	if err := m.record(ctx, r.Actor(), "image.tag", img.ID, map[string]any{"id": img.ID, "source": src.Text, "target": dst.Text}); err != nil {
		return err
	}
	return r.Row(map[string]any{"id": img.ID, "names": img.Names})
}

// usedBy returns the containers that use image id.
func (m *module) usedBy(id string) []string {
	var names []string
	for _, e := range m.table.all() {
		c := e.snapshot()
		if c.ImageID == id {
			names = append(names, c.Name)
		}
	}
	return names
}

func (m *module) runImageRm(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["IMAGE"]
	img, err := m.images.Resolve(w.Text)
	if err != nil {
		return engines.Errorf(wire.NotFound, w, "%v", err)
	}
	if users := m.usedBy(img.ID); len(users) > 0 && !st.Flags["force"] && (len(img.Names) <= 1 || strings.HasPrefix(w.Text, "sha256:") || strings.HasPrefix(img.ID, "sha256:"+w.Text)) {
		return engines.Errorf(wire.FailedPrecondition, w, "image %s is used by container(s) %s: remove them first, or image rm force", w.Text, strings.Join(users, ", "))
	}
	removed, untagged, err := m.images.Remove(w.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, w, "%v", err)
	}
	if err := m.record(ctx, r.Actor(), "image.rm", removed.ID, map[string]any{"id": removed.ID, "ref": w.Text, "untagged_only": untagged, "force": st.Flags["force"]}); err != nil {
		return err
	}
	return r.Row(map[string]any{"id": removed.ID, "ref": w.Text, "deleted": !untagged})
}

func (m *module) runImagePrune(ctx context.Context, r engines.Request) error {
	keep := map[string]bool{}
	for _, e := range m.table.all() {
		for _, d := range e.snapshot().DiffIDs {
			keep[d] = true
		}
	}
	rep, err := m.images.Prune(keep)
	if err != nil {
		return err
	}
	if err := m.record(ctx, r.Actor(), "image.prune", "images", map[string]any{"report": rep}); err != nil {
		return err
	}
	return r.Row(rep)
}
