package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ociLayerType maps docker's layer media types to OCI's.
var ociLayerType = map[types.MediaType]types.MediaType{
	types.DockerLayer:             types.OCILayer,
	types.DockerUncompressedLayer: types.OCIUncompressedLayer,
	types.DockerForeignLayer:      types.OCIRestrictedLayer,
}

// writeImage writes img's layers, config and manifest as blobs, and returns
// the index entry (without name) of the manifest.
//
// A docker (schema 2) manifest is rewritten as an OCI manifest: skopeo's
// oci: transport only looks up OCI manifests by name. The config blob is
// kept byte for byte, so the image id stays the config digest the archive
// gave it.
func (s *Store) writeImage(img v1.Image) (v1.Descriptor, error) {
	m, err := img.Manifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read layers: %w", err)
	}
	for i, l := range layers {
		d := m.Layers[i].Digest
		if err := s.writeBlob(d, l.Compressed); err != nil {
			return v1.Descriptor{}, fmt.Errorf("layer %s: %w", d, err)
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read config: %w", err)
	}
	if err := s.writeBlob(m.Config.Digest, bytesOpener(cfg)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}

	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest media type: %w", err)
	}
	var raw []byte
	if mt == types.OCIManifestSchema1 {
		if raw, err = img.RawManifest(); err != nil {
			return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
		}
	} else {
		oci := m.DeepCopy()
		oci.MediaType = types.OCIManifestSchema1
		oci.Config.MediaType = types.OCIConfigJSON
		oci.Config.Data = nil
		for i := range oci.Layers {
			if t, ok := ociLayerType[oci.Layers[i].MediaType]; ok {
				oci.Layers[i].MediaType = t
			}
		}
		if raw, err = json.Marshal(oci); err != nil {
			return v1.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
		}
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.writeBlob(h, bytesOpener(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, err)
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: size}, nil
}

// bytesOpener opens b as a blob's content.
func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// writeBlob stores the content open gives as blob h unless it is there: to
// a temporary file, checked against h, synced, then renamed into place, so
// a blob file is always whole.
func (s *Store) writeBlob(h v1.Hash, open func() (io.ReadCloser, error)) error {
	dir := filepath.Join(s.layoutDir, "blobs", h.Algorithm)
	final := filepath.Join(dir, h.Hex)
	if _, err := os.Stat(final); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, tempPrefix+h.Hex+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	sum := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, sum), rc)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h.Hex {
		return fmt.Errorf("content has digest sha256:%s", got)
	}
	return os.Rename(f.Name(), final)
}
