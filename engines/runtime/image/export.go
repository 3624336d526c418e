package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Export formats.
const (
	// FormatOCIArchive is a tar of an OCI image layout holding the one
	// image, named by its first name.
	FormatOCIArchive = "oci-archive"
	// FormatDockerArchive is what `docker save` writes: manifest.json with
	// every name of the image as RepoTags.
	FormatDockerArchive = "docker-archive"
)

// Export writes the image ref names to w as format: FormatOCIArchive (the
// default, for "") or FormatDockerArchive. skopeo reads either
// (`skopeo inspect oci-archive:FILE`, `skopeo inspect docker-archive:FILE`).
func (s *Store) Export(ctx context.Context, ref string, w io.Writer, format string) error {
	im, img, err := s.image(ref)
	if err != nil {
		return err
	}
	switch format {
	case "", FormatOCIArchive:
		err = s.exportOCI(ctx, im, img, w)
	case FormatDockerArchive:
		err = exportDocker(im, img, w)
	default:
		return fmt.Errorf("export %s: unknown format %q: use %s or %s", ref, format, FormatOCIArchive, FormatDockerArchive)
	}
	if err != nil {
		return fmt.Errorf("export %s as %s: %w", ref, format, err)
	}
	return nil
}

// exportDocker writes a docker-archive with every name of the image.
func exportDocker(im Image, img v1.Image, w io.Writer) error {
	refs := map[name.Reference]v1.Image{}
	for _, n := range im.Names {
		t, err := name.NewTag(n)
		if err != nil {
			return err
		}
		refs[t] = img
	}
	if len(refs) == 0 {
		// An unnamed image gets no RepoTags; the digest reference only
		// keys the map.
		d, err := name.NewDigest("image@" + im.Digest)
		if err != nil {
			return err
		}
		refs[d] = img
	}
	return tarball.MultiRefWrite(refs, w)
}

// exportOCI writes a tar of an OCI layout holding the image's blobs, as
// stored, and an index.json with its one entry.
func (s *Store) exportOCI(ctx context.Context, im Image, img v1.Image, w io.Writer) error {
	desc, err := imageDescriptor(img)
	if err != nil {
		return err
	}
	if len(im.Names) > 0 {
		desc.Annotations = map[string]string{refNameAnnotation: im.Names[0]}
	}
	idx, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests:     []v1.Descriptor{desc},
	})
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	blobs := []v1.Hash{desc.Digest, m.Config.Digest}
	seen := map[v1.Hash]bool{}
	for _, l := range m.Layers {
		if !seen[l.Digest] {
			seen[l.Digest] = true
			blobs = append(blobs, l.Digest)
		}
	}

	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime}); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", idx},
	} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	for _, h := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.copyBlob(tw, h, mtime); err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
	}
	return tw.Close()
}

// copyBlob writes the stored blob h into tw.
func (s *Store) copyBlob(tw *tar.Writer, h v1.Hash, mtime time.Time) error {
	f, err := os.Open(filepath.Join(s.layoutDir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "blobs/" + h.Algorithm + "/" + h.Hex, Mode: 0o644, Size: fi.Size(), ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
