package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// StoreService is the name under which the runtime engine provides its
// *Store to other engines (engines.Services): one store per daemon, so
// that its index is changed under one lock.
const StoreService = "runtime.images"

// What an image builder needs of the store: images that are not (yet)
// named, kept as blobs only, read back by manifest digest, unpacked like
// any other, and named when the build succeeds.

// Image returns the stored image ref names, described and as an image.
func (s *Store) Image(ref string) (Image, v1.Image, error) {
	return s.image(ref)
}

// WriteBlobs stores img's layers, config and manifest (as an OCI manifest)
// as blobs without giving it an index entry, and returns the manifest's
// digest, which BlobImage reads back. Prune deletes such blobs once no
// image of the index reaches them.
func (s *Store) WriteBlobs(img v1.Image) (v1.Hash, error) {
	d, err := s.writeImage(img)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write image blobs: %w", err)
	}
	return d.Digest, nil
}

// BlobImage reads the image whose OCI manifest is the blob h, whether an
// index entry names it or not. A missing blob (pruned) gives an error
// matching ErrNotFound.
func (s *Store) BlobImage(h v1.Hash) (v1.Image, error) {
	raw, err := os.ReadFile(s.blobPath(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotFoundError{Ref: h.String()}
		}
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", h, err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if _, err := os.Stat(s.blobPath(d.Digest)); err != nil {
			return nil, &NotFoundError{Ref: h.String() + " (blob " + d.Digest.String() + ")"}
		}
	}
	return partial.CompressedToImage(&blobImage{s: s, raw: raw, m: m})
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.layoutDir, "blobs", h.Algorithm, h.Hex)
}

// Add writes img's blobs and gives it names (normalized; taken from the
// images that held them, as Tag does). Without names the image is a
// dangling index entry.
func (s *Store) Add(img v1.Image, names ...string) (Image, error) {
	ai := archiveImage{img: img}
	for _, n := range names {
		nn, err := NormalizeName(n)
		if err != nil {
			return Image{}, err
		}
		ai.names = append(ai.names, nn)
	}
	out, err := s.add([]archiveImage{ai})
	if err != nil {
		return Image{}, err
	}
	if len(out) != 1 {
		return Image{}, fmt.Errorf("add image: %d images written, want 1", len(out))
	}
	return out[0], nil
}

// UnpackImage is Unpack for an image given as such (one BlobImage read, or
// one being built): its layers are unpacked once per diff_id into the
// store's cache, and their directories returned topmost first.
func (s *Store) UnpackImage(ctx context.Context, img v1.Image) (lowerdirs []string, diffIDs []string, err error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("unpack: read config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("unpack: read layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return nil, nil, fmt.Errorf("unpack: %d layers but %d diff_ids in the config", len(layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range layers {
		diffID := cfg.RootFS.DiffIDs[i]
		dir, err := s.unpackLayer(ctx, l, diffID)
		if err != nil {
			return nil, nil, fmt.Errorf("unpack: layer %s: %w", diffID, err)
		}
		lowerdirs = append(lowerdirs, dir)
		diffIDs = append(diffIDs, diffID.String())
	}
	slices.Reverse(lowerdirs)
	slices.Reverse(diffIDs)
	return lowerdirs, diffIDs, nil
}

// blobImage is an image read from the store's blobs by manifest digest.
type blobImage struct {
	s   *Store
	raw []byte
	m   *v1.Manifest
}

func (b *blobImage) RawManifest() ([]byte, error) { return b.raw, nil }

func (b *blobImage) MediaType() (types.MediaType, error) {
	if b.m.MediaType != "" {
		return b.m.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

func (b *blobImage) RawConfigFile() ([]byte, error) {
	return os.ReadFile(b.s.blobPath(b.m.Config.Digest))
}

func (b *blobImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range b.m.Layers {
		if d.Digest == h {
			return &blobLayer{path: b.s.blobPath(h), d: d}, nil
		}
	}
	return nil, fmt.Errorf("manifest has no layer %s", h)
}

// blobLayer is one layer blob of the store.
type blobLayer struct {
	path string
	d    v1.Descriptor
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
