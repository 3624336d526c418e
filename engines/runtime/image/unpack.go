package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// extraction is one layer being unpacked; done closes when it ends.
type extraction struct {
	done chan struct{}
	err  error
}

// Unpack makes sure every layer of the image ref names is unpacked, once per
// diff_id, under unpackDir/<hex>/ (extracted to a temporary directory, then
// renamed into place; concurrent callers for one layer wait for a single
// extraction) and returns the overlayfs lowerdirs, topmost layer first as
// overlay's lowerdir option wants them, with the matching diff_ids.
func (s *Store) Unpack(ctx context.Context, ref string) (lowerdirs []string, diffIDs []string, err error) {
	im, err := s.Resolve(ref)
	if err != nil {
		return nil, nil, err
	}
	h, err := v1.NewHash(im.Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("unpack %s: %w", ref, err)
	}
	img, err := s.path.Image(h)
	if err != nil {
		return nil, nil, fmt.Errorf("unpack %s: %w", ref, err)
	}
	lowerdirs, diffIDs, err = s.UnpackImage(ctx, img)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ref, err)
	}
	return lowerdirs, diffIDs, nil
}

// unpackLayer returns the directory of the layer diffID, extracting it
// first unless it is there; one caller extracts, the others wait.
func (s *Store) unpackLayer(ctx context.Context, l v1.Layer, diffID v1.Hash) (string, error) {
	dir := filepath.Join(s.unpackDir, diffID.Hex)
	for {
		s.unpackMu.Lock()
		if e, ok := s.unpacking[diffID.Hex]; ok {
			s.unpackMu.Unlock()
			select {
			case <-e.done:
				if e.err != nil && !errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded) {
					return "", e.err
				}
				continue // it succeeded, or its caller gave up: look again
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		if _, err := os.Stat(dir); err == nil {
			s.unpackMu.Unlock()
			return dir, nil
		}
		e := &extraction{done: make(chan struct{})}
		s.unpacking[diffID.Hex] = e
		s.unpackMu.Unlock()

		e.err = s.extract(ctx, l, diffID, dir)

		s.unpackMu.Lock()
		delete(s.unpacking, diffID.Hex)
		s.unpackMu.Unlock()
		close(e.done)
		return dir, e.err
	}
}

// tempPrefix starts the name of a layer directory being extracted.
const tempPrefix = ".tmp-"

// extract unpacks the layer into a temporary directory beside dir, checks
// its diff_id, and renames it to dir.
func (s *Store) extract(ctx context.Context, l v1.Layer, diffID v1.Hash, dir string) error {
	tmp, err := os.MkdirTemp(s.unpackDir, tempPrefix+diffID.Hex+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := sha256.New()
	tee := io.TeeReader(rc, sum)
	if err := extractLayer(ctx, tee, tmp); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != diffID.Hex {
		return fmt.Errorf("content has diff_id sha256:%s: the stored blob is corrupt", got)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move unpacked layer into place: %w", err)
	}
	return nil
}
