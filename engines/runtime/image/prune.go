package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PruneReport says what Prune deleted.
type PruneReport struct {
	// Blobs is the number of blobs deleted from the layout.
	Blobs int
	// Layers is the number of unpacked layer directories deleted.
	Layers int
	// BytesFreed is the size of the deleted blobs and of the regular files
	// of the deleted layer directories.
	BytesFreed int64
}

// Prune deletes the blobs no index entry reaches, and the unpacked layers
// that no image of the index uses and keepDiffIDs ("sha256:…", the layers
// containers run on) does not hold, with any extraction a crash left
// behind.
func (s *Store) Prune(keepDiffIDs map[string]bool) (PruneReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return PruneReport{}, err
	}
	reach := map[string]bool{}  // blob hex
	layers := map[string]bool{} // diff_id hex
	for d := range keepDiffIDs {
		layers[strings.TrimPrefix(d, "sha256:")] = true
	}
	for _, d := range idx.Manifests {
		if err := s.reach(d, reach, layers); err != nil {
			return PruneReport{}, fmt.Errorf("prune: %w", err)
		}
	}

	var rep PruneReport
	blobDir := filepath.Join(s.layoutDir, "blobs", "sha256")
	entries, err := os.ReadDir(blobDir)
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	for _, e := range entries {
		if reach[e.Name()] {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // gone already
		}
		if err := os.Remove(filepath.Join(blobDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rep, fmt.Errorf("prune blob %s: %w", e.Name(), err)
		}
		rep.Blobs++
		rep.BytesFreed += fi.Size()
	}

	entries, err = os.ReadDir(s.unpackDir)
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	s.unpackMu.Lock()
	defer s.unpackMu.Unlock()
	for _, e := range entries {
		hex := e.Name()
		if rest, ok := strings.CutPrefix(hex, tempPrefix); ok {
			// A temporary directory is live while its extraction runs.
			hex, _, _ = strings.Cut(rest, "-")
			if s.unpacking[hex] != nil {
				continue
			}
		} else if layers[hex] || s.unpacking[hex] != nil {
			continue
		}
		p := filepath.Join(s.unpackDir, e.Name())
		size := treeSize(p)
		if err := os.RemoveAll(p); err != nil {
			return rep, fmt.Errorf("prune unpacked layer %s: %w", e.Name(), err)
		}
		rep.Layers++
		rep.BytesFreed += size
	}
	return rep, nil
}

// reach marks the blobs and diff_ids the index entry d leads to.
func (s *Store) reach(d v1.Descriptor, blobs, diffIDs map[string]bool) error {
	blobs[d.Digest.Hex] = true
	switch {
	case d.MediaType.IsImage():
		img, err := s.path.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("read image %s: %w", d.Digest, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return fmt.Errorf("read manifest %s: %w", d.Digest, err)
		}
		blobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			blobs[l.Digest.Hex] = true
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("read config of %s: %w", d.Digest, err)
		}
		for _, id := range cfg.RootFS.DiffIDs {
			diffIDs[id.Hex] = true
		}
	case d.MediaType.IsIndex():
		ii, err := s.path.ImageIndex()
		if err != nil {
			return err
		}
		child, err := ii.ImageIndex(d.Digest)
		if err != nil {
			return fmt.Errorf("read index %s: %w", d.Digest, err)
		}
		im, err := child.IndexManifest()
		if err != nil {
			return fmt.Errorf("read index %s: %w", d.Digest, err)
		}
		for _, c := range im.Manifests {
			if err := s.reach(c, blobs, diffIDs); err != nil {
				return err
			}
		}
	}
	return nil
}

// treeSize sums the sizes of the regular files under p.
func treeSize(p string) int64 {
	var size int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	return size
}
