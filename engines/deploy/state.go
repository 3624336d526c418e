package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Stemcell is an image of the runtime's store known as a stemcell.
type Stemcell struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Image    string    `json:"image"`
	ImageID  string    `json:"image_id"`
	Uploaded time.Time `json:"uploaded"`
}

// Instance is one instance of a deployment: a container of the runtime.
type Instance struct {
	Group     string `json:"group"`
	Index     int    `json:"index"`
	ID        string `json:"id"`
	Container string `json:"container"`
	IP        string `json:"ip"`
	// Network is the runtime network its container is on: bridge, or
	// bosh-NAME for the cloud config's manual network NAME.
	Network string `json:"network,omitempty"`
	// Hash is the instance's rendered state (jobs, properties, packages,
	// stemcell): an update is due when it differs.
	Hash string `json:"hash"`
	// Packages is the set of compiled packages and the stemcell image its
	// container was created with: a change recreates it.
	Packages string `json:"packages"`
	// State is what the director wants: started or stopped (deploy
	// stop), and failed when its last update did not reach running.
	State string `json:"state"`
	Disk  bool   `json:"disk"`
}

// Name is group/index.
func (i *Instance) Name() string { return fmt.Sprintf("%s/%d", i.Group, i.Index) }

// Deployment is a deployment as last deployed.
type Deployment struct {
	Name string `json:"name"`
	// Manifest is the manifest as given (its ((variables)) unresolved):
	// the next deploy's diff is against it.
	Manifest string `json:"manifest"`
	// Resolved is the manifest with its variables' values, as deployed.
	Resolved  string      `json:"resolved"`
	Instances []*Instance `json:"instances"`
}

// Task is a deploy task.
type Task struct {
	ID          int       `json:"id"`
	Deployment  string    `json:"deployment"`
	Description string    `json:"description"`
	State       string    `json:"state"` // processing, done, error
	Error       string    `json:"error,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	FirstSeq    int64     `json:"first_seq"`
	// skipDrain is deploy's skip-drain: no drain script runs.
	skipDrain bool
}

// state is the director's record, one JSON file written whole (temp
// file and rename) after every change, beside the journal that holds
// the history.
type state struct {
	Stemcells   map[string]*Stemcell   `json:"stemcells"` // name/version
	Releases    map[string]*Release    `json:"releases"`  // name/version
	Deployments map[string]*Deployment `json:"deployments"`
	Tasks       []*Task                `json:"tasks"`
	// Compiled are the compiled packages: fingerprint/stemcell image id.
	Compiled map[string]bool `json:"compiled"`
	// Variables are each deployment's generated variables, by name. This
	// file is the only place their values are kept (mode 0600); events
	// name them.
	Variables map[string]map[string]any `json:"variables"`
	// CloudConfig is the last cloud-config update, as given; empty for
	// none.
	CloudConfig string `json:"cloud_config"`
	// Resurrection says whether the resurrector recreates failed
	// instances.
	Resurrection bool `json:"resurrection"`
}

func newState() *state {
	return &state{Stemcells: map[string]*Stemcell{}, Releases: map[string]*Release{}, Deployments: map[string]*Deployment{},
		Compiled: map[string]bool{}, Variables: map[string]map[string]any{}, Resurrection: true}
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return newState(), nil
	}
	if err != nil {
		return nil, err
	}
	s := newState()
	// Numbers stay as written (a property default of 80 is not 80.0).
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Variables == nil {
		s.Variables = map[string]map[string]any{}
	}
	return s, nil
}

func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
