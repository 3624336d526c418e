package image

import (
	"fmt"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Inspect is what `docker image inspect` reports of an image, with its
// field names.
type Inspect struct {
	Id           string // spelled as docker spells it
	RepoTags     []string
	RepoDigests  []string
	Created      time.Time
	Architecture string
	Os           string
	Size         int64
	Config       InspectConfig
	RootFS       InspectRootFS
}

// InspectConfig is the run configuration part of Inspect.
type InspectConfig struct {
	Env          []string
	Cmd          []string
	Entrypoint   []string
	WorkingDir   string
	User         string
	ExposedPorts map[string]struct{}
	Labels       map[string]string
}

// InspectRootFS lists the image's layers by diff_id, bottom first.
type InspectRootFS struct {
	Type   string
	Layers []string
}

// HistoryEntry is one line of `docker image history`.
type HistoryEntry struct {
	// ID is the image id on the newest entry, "<missing>" on the others, as
	// docker prints for images it did not build.
	ID        string
	Created   time.Time
	CreatedBy string
	// Size is the stored (compressed) size of the layer the step made, 0
	// for a step that made none.
	Size    int64
	Comment string
}

// image returns the stored image ref names with its description.
func (s *Store) image(ref string) (Image, v1.Image, error) {
	im, err := s.Resolve(ref)
	if err != nil {
		return Image{}, nil, err
	}
	h, err := v1.NewHash(im.Digest)
	if err != nil {
		return Image{}, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := s.path.Image(h)
	if err != nil {
		return Image{}, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return im, img, nil
}

// Config returns the config of the image ref names.
func (s *Store) Config(ref string) (*v1.ConfigFile, error) {
	_, img, err := s.image(ref)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", ref, err)
	}
	return cfg, nil
}

// Inspect describes the image ref names as `docker image inspect` does.
func (s *Store) Inspect(ref string) (Inspect, error) {
	im, err := s.Resolve(ref)
	if err != nil {
		return Inspect{}, err
	}
	cfg, err := s.Config(im.ID)
	if err != nil {
		return Inspect{}, err
	}
	out := Inspect{
		Id:           im.ID,
		RepoTags:     slices.Clone(im.Names),
		RepoDigests:  []string{},
		Created:      cfg.Created.Time,
		Architecture: cfg.Architecture,
		Os:           cfg.OS,
		Size:         im.Size,
		Config: InspectConfig{
			Env:          cfg.Config.Env,
			Cmd:          cfg.Config.Cmd,
			Entrypoint:   cfg.Config.Entrypoint,
			WorkingDir:   cfg.Config.WorkingDir,
			User:         cfg.Config.User,
			ExposedPorts: cfg.Config.ExposedPorts,
			Labels:       cfg.Config.Labels,
		},
		RootFS: InspectRootFS{Type: cfg.RootFS.Type},
	}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	for _, d := range cfg.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	return out, nil
}

// History lists the steps that built the image ref names, newest first, as
// `docker image history` does. An image whose config has no history gets
// one entry per layer.
func (s *Store) History(ref string) ([]HistoryEntry, error) {
	im, img, err := s.image(ref)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("image %s: read manifest: %w", ref, err)
	}
	history := cfg.History
	if len(history) == 0 {
		for range m.Layers {
			history = append(history, v1.History{Created: cfg.Created})
		}
	}
	var out []HistoryEntry
	layer := 0
	for _, h := range history {
		e := HistoryEntry{ID: "<missing>", Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && layer < len(m.Layers) {
			e.Size = m.Layers[layer].Size
			layer++
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	if len(out) > 0 {
		out[0].ID = im.ID
	}
	return out, nil
}
