package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// archiveImage is one image found in an archive, validated, with the names
// it is to hold.
type archiveImage struct {
	img   v1.Image
	names []string
}

// Import reads a docker-archive (as `docker save` writes it, with a
// manifest.json) or an oci-archive (a tar of an OCI image layout, as
// `skopeo copy … oci-archive:` writes it), either possibly gzipped, from r, validates every layer
// (read fully; digest and diff_id checked against the manifest and config)
// before writing anything, then adds the image(s) to the store.
//
// tag, if not empty, names the single image of the archive; otherwise the
// archive's names are used (docker-archive RepoTags, oci-archive
// org.opencontainers.image.ref.name or io.containerd.image.name). A
// corrupt or truncated archive gives an error naming the layer digest and
// leaves the store as it was (a write that fails after validation, a full
// disk, can leave blobs no entry reaches; Prune deletes them).
func (s *Store) Import(ctx context.Context, r io.Reader, tag string) ([]Image, error) {
	if tag != "" {
		n, err := NormalizeName(tag)
		if err != nil {
			return nil, err
		}
		tag = n
	}
	work, err := os.MkdirTemp(s.layoutDir, ".import-")
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	defer os.RemoveAll(work)

	spool := filepath.Join(work, "archive.tar")
	entries, err := spoolArchive(ctx, r, spool)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	var images []archiveImage
	switch {
	case entries["manifest.json"]:
		images, err = dockerArchiveImages(spool)
	case entries["index.json"] && entries["oci-layout"]:
		images, err = ociArchiveImages(ctx, spool, filepath.Join(work, "layout"))
	default:
		err = errors.New("not a docker-archive (no manifest.json) nor an oci-archive (no oci-layout and index.json)")
	}
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	if len(images) == 0 {
		return nil, errors.New("import image: the archive holds no image")
	}
	if tag != "" {
		if len(images) > 1 {
			return nil, fmt.Errorf("import image: the archive holds %d images, a tag can name only one: import without a tag", len(images))
		}
		images[0].names = []string{tag}
	}
	for _, ai := range images {
		if err := validate(ctx, ai.img); err != nil {
			return nil, fmt.Errorf("import image: %w", err)
		}
	}
	return s.add(images)
}

// add writes the validated images' blobs and their index entries.
func (s *Store) add(images []archiveImage) ([]Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var digests []string
	for _, ai := range images {
		d, err := s.writeImage(ai.img)
		if err != nil {
			return nil, fmt.Errorf("import image: write blobs: %w", err)
		}
		digests = append(digests, d.Digest.String())
		if len(ai.names) == 0 {
			if _, err := s.descriptor(idx, d.Digest.String()); err != nil {
				idx.Manifests = append(idx.Manifests, d)
			}
			continue
		}
		for _, n := range ai.names {
			idx.Manifests = addName(idx.Manifests, d, n)
		}
	}
	if err := s.writeIndex(idx); err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	all, err := s.images(idx)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, d := range digests {
		for _, img := range all {
			if img.Digest == d {
				out = append(out, img)
				break
			}
		}
	}
	return out, nil
}

// imageDescriptor is the index entry for img, without annotations.
func imageDescriptor(img v1.Image) (v1.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest media type: %w", err)
	}
	h, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("digest manifest: %w", err)
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("size manifest: %w", err)
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: size}, nil
}

// blobEntry recognizes the archive entries that hold a layer or blob: their
// hex digest names them (docker: <hex>.tar, <hex>/layer.tar, <hex>.tar.gz;
// OCI: blobs/sha256/<hex>).
var blobEntry = regexp.MustCompile(`(?:^|/)([0-9a-f]{64})(?:\.tar(?:\.gz)?|/layer\.tar)?$`)

// spoolArchive copies the tar stream r into the file spool, reading every
// entry fully, and returns the set of entry names. A truncated entry is
// reported by the layer digest its name holds.
func spoolArchive(ctx context.Context, r io.Reader, spool string) (map[string]bool, error) {
	f, err := os.Create(spool)
	if err != nil {
		return nil, fmt.Errorf("spool archive: %w", err)
	}
	defer f.Close()
	src, err := decompressed(&ctxReader{ctx: ctx, r: r})
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	tr := tar.NewReader(io.TeeReader(src, f))
	entries := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		entries[name] = true
		if _, err := io.Copy(io.Discard, tr); err != nil {
			if m := blobEntry.FindStringSubmatch(name); m != nil {
				return nil, fmt.Errorf("layer sha256:%s: %w", m[1], err)
			}
			return nil, fmt.Errorf("archive entry %s: %w", name, err)
		}
	}
	// Keep what follows the tar's end marker too: it is part of the stream.
	if _, err := io.Copy(f, src); err != nil {
		return nil, fmt.Errorf("spool archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("spool archive: %w", err)
	}
	return entries, nil
}

// decompressed returns r's content, gunzipped if it is gzip (as
// `docker save | gzip` writes).
func decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil // too short for gzip: the tar reader reports it
	}
	return gzip.NewReader(br)
}

// ctxReader stops a long read when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// dockerArchiveImages reads the images of the docker-archive at spool.
func dockerArchiveImages(spool string) ([]archiveImage, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(spool) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("read docker-archive manifest.json: %w", err)
	}
	var out []archiveImage
	for i, d := range m {
		var t *name.Tag
		var names []string
		for _, rt := range d.RepoTags {
			n, err := NormalizeName(rt)
			if err != nil {
				return nil, fmt.Errorf("docker-archive image %d: %w", i, err)
			}
			names = append(names, n)
		}
		if len(d.RepoTags) > 0 {
			tg, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("docker-archive image %d: invalid RepoTag %q: %w", i, d.RepoTags[0], err)
			}
			t = &tg
		} else if len(m) > 1 {
			return nil, fmt.Errorf("docker-archive image %d (config %s) has no RepoTags: an untagged image can only be imported alone", i, d.Config)
		}
		img, err := tarball.Image(opener, t)
		if err != nil {
			return nil, fmt.Errorf("read docker-archive image %d (config %s): %w", i, d.Config, err)
		}
		out = append(out, archiveImage{img: img, names: names})
	}
	return out, nil
}

// ociArchiveImages unpacks the oci-archive at spool into dir and reads the
// images its index.json names (nested indexes are followed).
func ociArchiveImages(ctx context.Context, spool, dir string) ([]archiveImage, error) {
	if err := untarLayout(ctx, spool, dir); err != nil {
		return nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read oci-archive layout: %w", err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read oci-archive index.json: %w", err)
	}
	return indexImages(p, ii, nil)
}

// indexImages collects the images of ii, checking every manifest blob
// against its digest.
func indexImages(p layout.Path, ii v1.ImageIndex, names []string) ([]archiveImage, error) {
	idx, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read oci-archive index: %w", err)
	}
	var out []archiveImage
	for _, d := range idx.Manifests {
		if err := checkBlob(p, d.Digest); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		entryNames := names
		n := d.Annotations[containerdNameAnnotation]
		if n == "" {
			n = d.Annotations[refNameAnnotation]
		}
		if n != "" {
			nn, err := NormalizeName(n)
			if err != nil {
				return nil, fmt.Errorf("oci-archive manifest %s: %w", d.Digest, err)
			}
			entryNames = []string{nn}
		}
		switch {
		case d.MediaType.IsImage():
			img, err := ii.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read oci-archive image %s: %w", d.Digest, err)
			}
			out = mergeImage(out, img, d.Digest, entryNames)
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read oci-archive index %s: %w", d.Digest, err)
			}
			imgs, err := indexImages(p, child, entryNames)
			if err != nil {
				return nil, err
			}
			for _, ai := range imgs {
				h, _ := ai.img.Digest()
				out = mergeImage(out, ai.img, h, ai.names)
			}
		}
	}
	return out, nil
}

// mergeImage adds img with names to out, or its names to the entry already
// there for the same manifest.
func mergeImage(out []archiveImage, img v1.Image, h v1.Hash, names []string) []archiveImage {
	for i := range out {
		if d, _ := out[i].img.Digest(); d == h {
			out[i].names = append(out[i].names, names...)
			return out
		}
	}
	return append(out, archiveImage{img: img, names: names})
}

// checkBlob reads the blob h of the layout p and checks its digest.
func checkBlob(p layout.Path, h v1.Hash) error {
	rc, err := p.Blob(h)
	if err != nil {
		return err
	}
	defer rc.Close()
	return checkDigest(rc, h)
}

// checkDigest reads r fully and checks that its sha256 is want.
func checkDigest(r io.Reader, want v1.Hash) error {
	if want.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", want.Algorithm)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != want.Hex {
		return fmt.Errorf("content has digest sha256:%s, not the one it is named by: the archive is corrupt", got)
	}
	return nil
}

// untarLayout extracts the regular files and directories of the oci-archive
// at spool into dir, refusing entries that escape it.
func untarLayout(ctx context.Context, spool, dir string) error {
	f, err := os.Open(spool)
	if err != nil {
		return fmt.Errorf("open spooled archive: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("unpack oci-archive: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("unpack oci-archive: %w", err)
	}
	defer root.Close()
	tr := tar.NewReader(&ctxReader{ctx: ctx, r: f})
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read oci-archive: %w", err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return fmt.Errorf("oci-archive: %w", err)
		}
		if name == "." {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return fmt.Errorf("unpack oci-archive %s: %w", name, err)
			}
		case tar.TypeReg:
			if err := root.MkdirAll(path.Dir(name), 0o700); err != nil {
				return fmt.Errorf("unpack oci-archive %s: %w", name, err)
			}
			out, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("unpack oci-archive %s: %w", name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack oci-archive %s: %w", name, err)
			}
		}
	}
}

// validate reads every layer of img fully: the compressed stream against
// the manifest's digest (where the manifest gives one) and the uncompressed
// stream against the config's diff_id.
func validate(ctx context.Context, img v1.Image) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("read image config: %w", err)
	}
	if err := checkConfig(img); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("read image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("image has %d layers but its config lists %d diff_ids", len(layers), len(cfg.RootFS.DiffIDs))
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("read image manifest: %w", err)
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		want := m.Layers[i].Digest
		if err := checkCompressed(l, want); err != nil {
			return fmt.Errorf("layer %s: %w", want, err)
		}
		diffID := cfg.RootFS.DiffIDs[i]
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", diffID, err)
		}
		err = checkDigest(rc, diffID)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: diff_id: %w", diffID, err)
		}
	}
	return nil
}

// checkConfig checks the raw config against the manifest's config digest.
func checkConfig(img v1.Image) error {
	name, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("read image config digest: %w", err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("read image config: %w", err)
	}
	if err := checkDigest(bytes.NewReader(raw), name); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	return nil
}

// checkCompressed reads the layer's stored stream against want.
func checkCompressed(l v1.Layer, want v1.Hash) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return checkDigest(rc, want)
}

// cleanEntryName returns the archive entry name relative to the root
// ("./a/../b" → "b"), or an error if it escapes the root.
func cleanEntryName(name string) (string, error) {
	clean := path.Clean(strings.TrimLeft(name, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q escapes the root: refused", name)
	}
	return clean, nil
}
