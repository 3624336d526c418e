package netcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// stateFile holds the endpoints, so that a daemon restart keeps the
// addresses handed out and can find every link and mount to remove.
const stateFile = "endpoints.json"

type stateDoc struct {
	Endpoints []Endpoint `json:"endpoints"`
}

// loadState reads the persisted endpoints; a missing file is none.
func loadState(dir string) (map[string]Endpoint, error) {
	path := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Endpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read network state %s: %w (move it aside to start with no endpoints)", path, err)
	}
	eps := make(map[string]Endpoint, len(doc.Endpoints))
	for _, ep := range doc.Endpoints {
		eps[ep.ID] = ep
	}
	return eps, nil
}

// saveState writes the endpoints atomically: a temporary file, synced,
// renamed over the old one, and the directory synced, so a crash leaves
// the old state or the new one.
func saveState(dir string, eps map[string]Endpoint) error {
	b, err := json.MarshalIndent(stateDoc{Endpoints: sortedEndpoints(eps)}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, stateFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write network state: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("write network state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write network state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write network state: sync %s: %w", dir, err)
	}
	return nil
}

func sortedEndpoints(eps map[string]Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(eps))
	for _, ep := range eps {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
