package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// ErrNotFound is matched (errors.Is) by the error of any lookup of a
// reference no image in the store answers to.
var ErrNotFound = errors.New("image not found")

// NotFoundError reports that no image answers to Ref.
type NotFoundError struct {
	Ref string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("image %q not found: see the images the store holds with List, or import it", e.Ref)
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Image is one image of the store, as `docker images` lists it.
type Image struct {
	// ID is the digest of the image's config ("sha256:…"), docker's image id.
	ID string
	// Digest is the digest of the image's manifest, the index.json entry.
	Digest string
	// Names are the normalized names ("busybox:latest") the image holds,
	// sorted; empty for a dangling image.
	Names []string
	// Created is the config's creation time.
	Created time.Time
	// Size is the sum of the layer blobs' sizes, as stored (compressed).
	Size int64
	// Layers is the number of layers.
	Layers int
}

// Store keeps images in an OCI image layout and their unpacked layers in a
// cache directory. Its methods are safe for concurrent use.
type Store struct {
	layoutDir string
	unpackDir string
	path      layout.Path

	// mu serializes changes to index.json and Prune's deletions.
	mu sync.Mutex

	// unpackMu guards unpacking, the extractions in flight by diff_id hex.
	unpackMu  sync.Mutex
	unpacking map[string]*extraction
}

// Open opens (creating if needed) the store: an OCI image layout in
// layoutDir (oci-layout, index.json, blobs/sha256/…) that
// `skopeo inspect oci:<layoutDir>:NAME` reads, and the unpacked-layer cache
// in unpackDir.
func Open(layoutDir, unpackDir string) (*Store, error) {
	for _, dir := range []string{layoutDir, unpackDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(layoutDir, "index.json")); !errors.Is(statErr, os.ErrNotExist) {
			return nil, fmt.Errorf("open image layout %s: %w", layoutDir, err)
		}
		if p, err = layout.Write(layoutDir, empty.Index); err != nil {
			return nil, fmt.Errorf("create image layout %s: %w", layoutDir, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(layoutDir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("open image layout %s: %w", layoutDir, err)
	}
	return &Store{
		layoutDir: layoutDir,
		unpackDir: unpackDir,
		path:      p,
		unpacking: map[string]*extraction{},
	}, nil
}

// readIndex reads index.json.
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(s.layoutDir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	defer f.Close()
	idx, err := v1.ParseIndexManifest(f)
	if err != nil {
		return nil, fmt.Errorf("read image index %s: %w", f.Name(), err)
	}
	return idx, nil
}

// writeIndex replaces index.json atomically (temp file, fsync, rename).
func (s *Store) writeIndex(idx *v1.IndexManifest) error {
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode image index: %w", err)
	}
	f, err := os.CreateTemp(s.layoutDir, ".index-*.json")
	if err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write image index %s: %w", f.Name(), err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write image index %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write image index %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write image index %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(s.layoutDir, "index.json")); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// entryName is the normalized name of an index entry, "" if it has none.
func entryName(d v1.Descriptor) string {
	return d.Annotations[refNameAnnotation]
}

// List returns every image of the store, in index order.
func (s *Store) List() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	return s.images(idx)
}

// images groups the index's entries by manifest digest into Images.
func (s *Store) images(idx *v1.IndexManifest) ([]Image, error) {
	var out []Image
	pos := map[v1.Hash]int{}
	for _, d := range idx.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		i, ok := pos[d.Digest]
		if !ok {
			img, err := s.describe(d.Digest)
			if err != nil {
				return nil, err
			}
			i = len(out)
			pos[d.Digest] = i
			out = append(out, img)
		}
		if n := entryName(d); n != "" && !slices.Contains(out[i].Names, n) {
			out[i].Names = append(out[i].Names, n)
			slices.Sort(out[i].Names)
		}
	}
	return out, nil
}

// describe reads the manifest and config of the image with manifest digest
// h from the blobs.
func (s *Store) describe(h v1.Hash) (Image, error) {
	img, err := s.path.Image(h)
	if err != nil {
		return Image{}, fmt.Errorf("read image %s: %w", h, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return Image{}, fmt.Errorf("read manifest %s: %w", h, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("read config %s of image %s: %w", m.Config.Digest, h, err)
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	return Image{
		ID:      m.Config.Digest.String(),
		Digest:  h.String(),
		Created: cfg.Created.Time,
		Size:    size,
		Layers:  len(m.Layers),
	}, nil
}

// Resolve finds the image ref names: a name ("busybox" ≡ "busybox:latest"),
// a full id "sha256:…", or, as docker does, a prefix of at least 4 hex
// digits of the id (with or without "sha256:"). An unknown ref gives an
// error matching ErrNotFound; an ambiguous prefix an error saying so.
func (s *Store) Resolve(ref string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	img, _, err := s.resolve(idx, ref)
	return img, err
}

// resolve finds ref in idx and reports whether ref named the image (as
// opposed to giving its id).
func (s *Store) resolve(idx *v1.IndexManifest, ref string) (Image, bool, error) {
	images, err := s.images(idx)
	if err != nil {
		return Image{}, false, err
	}
	if n, err := NormalizeName(ref); err == nil {
		for _, img := range images {
			if slices.Contains(img.Names, n) {
				return img, true, nil
			}
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if len(prefix) < 4 || len(prefix) > 64 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return Image{}, false, &NotFoundError{Ref: ref}
	}
	var found []Image
	for _, img := range images {
		if strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), prefix) {
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return Image{}, false, &NotFoundError{Ref: ref}
	case 1:
		return found[0], false, nil
	default:
		return Image{}, false, fmt.Errorf("image id prefix %q is ambiguous: it matches %d images, give more digits", ref, len(found))
	}
}

// Tag gives the image src resolves to the name dst, taking it from the image
// that held it (which keeps its other names, or stays as a dangling image).
func (s *Store) Tag(src, dst string) (Image, error) {
	n, err := NormalizeName(dst)
	if err != nil {
		return Image{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	img, _, err := s.resolve(idx, src)
	if err != nil {
		return Image{}, err
	}
	d, err := s.descriptor(idx, img.Digest)
	if err != nil {
		return Image{}, err
	}
	idx.Manifests = addName(idx.Manifests, d, n)
	if err := s.writeIndex(idx); err != nil {
		return Image{}, fmt.Errorf("tag %s as %s: %w", src, n, err)
	}
	img, _, err = s.resolve(idx, n)
	return img, err
}

// descriptor returns a copy of the index entry of the manifest digest,
// without its annotations.
func (s *Store) descriptor(idx *v1.IndexManifest, digest string) (v1.Descriptor, error) {
	for _, d := range idx.Manifests {
		if d.Digest.String() == digest {
			d.Annotations = nil
			return d, nil
		}
	}
	return v1.Descriptor{}, &NotFoundError{Ref: digest}
}

// addName gives the image of d the name n: the entry holding n (on any
// image) goes, an image left without an entry keeps an unnamed one, and d's
// unnamed entry, if any, becomes the named one.
func addName(entries []v1.Descriptor, d v1.Descriptor, n string) []v1.Descriptor {
	var out []v1.Descriptor
	var orphaned []v1.Descriptor
	for _, e := range entries {
		if entryName(e) == n {
			if e.Digest != d.Digest {
				orphaned = append(orphaned, e)
			}
			continue
		}
		if e.Digest == d.Digest && entryName(e) == "" {
			continue // replaced by the named entry below
		}
		out = append(out, e)
	}
	named := d
	named.Annotations = map[string]string{refNameAnnotation: n}
	out = append(out, named)
	for _, e := range orphaned {
		if !slices.ContainsFunc(out, func(o v1.Descriptor) bool { return o.Digest == e.Digest }) {
			e.Annotations = nil
			out = append(out, e)
		}
	}
	return out
}

// Remove removes ref as `docker rmi` does: a name is untagged, and the image
// leaves the index when its last name goes (untaggedOnly reports that it
// kept other names); an id removes the image with all its names. Blobs and
// unpacked layers stay until Prune.
func (s *Store) Remove(ref string) (removed Image, untaggedOnly bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, false, err
	}
	img, byName, err := s.resolve(idx, ref)
	if err != nil {
		return Image{}, false, err
	}
	n, _ := NormalizeName(ref)
	untaggedOnly = byName && len(img.Names) > 1
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(e v1.Descriptor) bool {
		if e.Digest.String() != img.Digest {
			return false
		}
		return !untaggedOnly || entryName(e) == n
	})
	if err := s.writeIndex(idx); err != nil {
		return Image{}, false, fmt.Errorf("remove image %s: %w", ref, err)
	}
	return img, untaggedOnly, nil
}
