package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	goyaml "github.com/goccy/go-yaml"
	goyamlparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
)

// Manifest is a BOSH v2 deployment manifest.
type Manifest struct {
	Name           string          `yaml:"name"`
	DirectorUUID   string          `yaml:"director_uuid"`
	Releases       []ReleaseRef    `yaml:"releases"`
	Stemcells      []StemcellRef   `yaml:"stemcells"`
	Update         Update          `yaml:"update"`
	InstanceGroups []InstanceGroup `yaml:"instance_groups"`
	Properties     map[string]any  `yaml:"properties"`
	Variables      []any           `yaml:"variables"`
	Features       map[string]any  `yaml:"features"`
	Tags           map[string]any  `yaml:"tags"`
	// cloud is the cloud config a v1 manifest carries in itself
	// (networks, resource_pools, disk_pools, compilation).
	cloud *CloudConfig
}

// ReleaseRef names a release a manifest uses.
type ReleaseRef struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	URL     string `yaml:"url"`
	SHA1    string `yaml:"sha1"`
}

// StemcellRef names a stemcell by alias.
type StemcellRef struct {
	Alias   string `yaml:"alias"`
	OS      string `yaml:"os"`
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
}

// Update is the update block: canaries and parallelism.
type Update struct {
	Canaries        *int   `yaml:"canaries"`
	MaxInFlight     string `yaml:"max_in_flight"`
	CanaryWatchTime string `yaml:"canary_watch_time"`
	UpdateWatchTime string `yaml:"update_watch_time"`
	Serial          *bool  `yaml:"serial"`
}

// InstanceGroup is one instance group.
type InstanceGroup struct {
	Name               string         `yaml:"name"`
	Instances          int            `yaml:"instances"`
	AZs                []string       `yaml:"azs"`
	Jobs               []JobRef       `yaml:"jobs"`
	Stemcell           string         `yaml:"stemcell"`
	VMType             string         `yaml:"vm_type"`
	VMExtensions       []string       `yaml:"vm_extensions"`
	PersistentDisk     int            `yaml:"persistent_disk"`
	PersistentDiskType string         `yaml:"persistent_disk_type"`
	Networks           []NetworkRef   `yaml:"networks"`
	Lifecycle          string         `yaml:"lifecycle"`
	Env                map[string]any `yaml:"env"`
	Update             *Update        `yaml:"update"`
	Properties         map[string]any `yaml:"properties"`
}

// JobRef is a job of an instance group.
type JobRef struct {
	Name       string         `yaml:"name"`
	Release    string         `yaml:"release"`
	Properties map[string]any `yaml:"properties"`
	Provides   map[string]any `yaml:"provides"`
	Consumes   map[string]any `yaml:"consumes"`
}

// NetworkRef attaches an instance group to a network.
type NetworkRef struct {
	Name      string   `yaml:"name"`
	StaticIPs []string `yaml:"static_ips"`
	Default   []string `yaml:"default"`
}

// checkShape decodes a manifest as written, ((variables)) and all, as
// parseManifest will once they are interpolated, and answers its unknown
// fields and values of the wrong type at their place in the file. A value
// that is a ((variable)) is not judged: its type is known only once it is
// given.
func checkShape(file string, src []byte) error {
	var probe map[string]any
	if err := yaml.Unmarshal(src, &probe); err != nil {
		return yamlError(file, src, err)
	}
	var into any = &Manifest{}
	if _, isV1 := probe["jobs"]; isV1 {
		into = &v1{}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(into)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return nil // a syntax error the probe did not find, or none: parseManifest says it
	}
	var kept []string
	for _, e := range te.Errors {
		if !strings.Contains(e, "((") {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return yamlError(file, src, &yaml.TypeError{Errors: kept})
}

// parseManifest reads a v2 manifest; errors name file:line.
func parseManifest(file string, src []byte) (*Manifest, error) {
	if i := bytes.Index(src, []byte("((")); i >= 0 {
		line := 1 + bytes.Count(src[:i], []byte("\n"))
		col := i - bytes.LastIndexByte(src[:i], '\n')
		return nil, fmt.Errorf("%s:%d:%d: a ((variable)) has no value", file, line, col)
	}
	var probe map[string]any
	if err := yaml.Unmarshal(src, &probe); err != nil {
		return nil, yamlError(file, src, err)
	}
	var m Manifest
	if _, v1 := probe["jobs"]; v1 {
		v, err := parseV1(file, src)
		if err != nil {
			return nil, err
		}
		m = *v
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(src))
		dec.KnownFields(true)
		if err := dec.Decode(&m); err != nil {
			return nil, yamlError(file, src, err)
		}
	}
	if m.Name == "" {
		return nil, fmt.Errorf("%s: name: a deployment needs a name", file)
	}
	if !nameOK(m.Name) {
		return nil, fmt.Errorf("%s: name %q: use letters, digits, - and _", file, m.Name)
	}
	seen := map[string]bool{}
	for i, g := range m.InstanceGroups {
		where := fmt.Sprintf("%s: instance_groups[%d] (%s)", file, i, g.Name)
		if g.Name == "" || !nameOK(g.Name) {
			return nil, fmt.Errorf("%s: name: use letters, digits, - and _", where)
		}
		if seen[g.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		seen[g.Name] = true
		if g.Instances < 0 {
			return nil, fmt.Errorf("%s: instances: %d is negative", where, g.Instances)
		}
		if len(g.Jobs) == 0 {
			return nil, fmt.Errorf("%s: jobs: an instance group needs a job", where)
		}
		if g.Lifecycle != "" && g.Lifecycle != "service" && g.Lifecycle != "errand" {
			return nil, fmt.Errorf("%s: lifecycle: %s is service or errand", where, g.Lifecycle)
		}
		if _, err := g.update(m.Update).watch(true); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if _, err := g.update(m.Update).watch(false); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if _, err := g.update(m.Update).maxInFlight(g.Instances); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return &m, nil
}

func nameOK(s string) bool {
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// update is the group's update block over the manifest's.
func (g InstanceGroup) update(top Update) Update {
	u := top
	if g.Update != nil {
		if g.Update.Canaries != nil {
			u.Canaries = g.Update.Canaries
		}
		if g.Update.MaxInFlight != "" {
			u.MaxInFlight = g.Update.MaxInFlight
		}
		if g.Update.CanaryWatchTime != "" {
			u.CanaryWatchTime = g.Update.CanaryWatchTime
		}
		if g.Update.UpdateWatchTime != "" {
			u.UpdateWatchTime = g.Update.UpdateWatchTime
		}
	}
	return u
}

func (u Update) canaries() int {
	if u.Canaries == nil {
		return 1
	}
	return *u.Canaries
}

// maxInFlight is N or N% of the group's instances (at least 1).
func (u Update) maxInFlight(instances int) (int, error) {
	s := strings.TrimSpace(u.MaxInFlight)
	if s == "" {
		return 1, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(pct)
		if err != nil || n <= 0 || n > 100 {
			return 0, fmt.Errorf("max_in_flight: %q is not a percentage", s)
		}
		return max(1, instances*n/100), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("max_in_flight: %q is not a positive number or a percentage", s)
	}
	return n, nil
}

// watchRange is a watch time: at least min, at most max.
type watchRange struct{ min, max time.Duration }

// watch reads canary_watch_time or update_watch_time: N or N-M
// milliseconds (BOSH's default 30000-… here 1000-30000, a container starts
// in well under a second).
func (u Update) watch(canary bool) (watchRange, error) {
	s, field := u.UpdateWatchTime, "update_watch_time"
	if canary {
		s, field = u.CanaryWatchTime, "canary_watch_time"
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return watchRange{time.Second, 30 * time.Second}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil || a < 0 {
		return watchRange{}, fmt.Errorf("%s: %q is N or N-M milliseconds", field, s)
	}
	if !isRange {
		return watchRange{time.Duration(a) * time.Millisecond, time.Duration(a) * time.Millisecond}, nil
	}
	b, err := strconv.Atoi(strings.TrimSpace(hi))
	if err != nil || b < a {
		return watchRange{}, fmt.Errorf("%s: %q is N or N-M milliseconds with N ≤ M", field, s)
	}
	return watchRange{time.Duration(a) * time.Millisecond, time.Duration(b) * time.Millisecond}, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError says a YAML error as file:line:col: message, one per problem.
// yaml.v3 gives lines only: for a type error the column is the node's the
// problem names (an unknown or repeated field's key, a value of the wrong
// type), found in src parsed as nodes; a syntax error leaves no nodes: it
// is said as goccy/go-yaml's parser, which keeps each token's place, finds
// it (yaml.v3 names the line its block began on, goccy the token that
// breaks it), and as yaml.v3 says it when goccy finds none.
func yamlError(file string, src []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		if line, col, msg, ok := syntaxPlace(src); ok {
			return fmt.Errorf("%s:%d:%d: %s", file, line, col, msg)
		}
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if m := yamlLineRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			if col := yamlColumn(src, n, m[2]); col > 0 {
				msgs = append(msgs, fmt.Sprintf("%s:%d:%d: %s", file, n, col, m[2]))
			} else {
				msgs = append(msgs, file+":"+m[1]+": "+m[2])
			}
		} else {
			msgs = append(msgs, file+": "+strings.TrimPrefix(line, "yaml: "))
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// yamlNamedRE finds what a yaml.v3 type error names: a field, a mapping
// key, or a value that does not fit.
var yamlNamedRE = regexp.MustCompile("^(?:field (\\S+) (?:not found|already set)|mapping key \"(.*)\" already defined|cannot unmarshal !!\\w+ `(.*)` into)")

// yamlColumn returns the column of the node on line that msg names: the
// key or value it quotes, else for a mapping or sequence that does not fit
// the innermost one on the line, else the line's first node; 0 when src
// has no node there.
func yamlColumn(src []byte, line int, msg string) int {
	var root yaml.Node
	if len(src) == 0 || yaml.Unmarshal(src, &root) != nil {
		return 0
	}
	want := ""
	if m := yamlNamedRE.FindStringSubmatch(msg); m != nil {
		want = m[1] + m[2] + m[3]
	}
	var kind yaml.Kind
	switch {
	case strings.HasPrefix(msg, "cannot unmarshal !!map "):
		kind = yaml.MappingNode
	case strings.HasPrefix(msg, "cannot unmarshal !!seq "):
		kind = yaml.SequenceNode
	}
	named, ofKind, first := 0, 0, 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Line == line {
			if named == 0 && want != "" && n.Kind == yaml.ScalarNode &&
				(n.Value == want || strings.HasSuffix(want, "...") && strings.HasPrefix(n.Value, strings.TrimSuffix(want, "..."))) {
				named = n.Column
			}
			if kind != 0 && n.Kind == kind {
				ofKind = n.Column // the last in document order: the innermost
			}
			if first == 0 || n.Column < first {
				first = n.Column
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	switch {
	case named > 0:
		return named
	case ofKind > 0:
		return ofKind
	}
	return first
}

// v1 is BOSH's v1 manifest: networks, resource pools and compilation in
// the manifest, jobs with templates.
type v1 struct {
	Name          string         `yaml:"name"`
	DirectorUUID  string         `yaml:"director_uuid"`
	Releases      []ReleaseRef   `yaml:"releases"`
	Update        Update         `yaml:"update"`
	Properties    map[string]any `yaml:"properties"`
	Networks      []Network      `yaml:"networks"`
	Compilation   map[string]any `yaml:"compilation"`
	ResourcePools []struct {
		Name     string `yaml:"name"`
		Network  string `yaml:"network"`
		Size     int    `yaml:"size"`
		Stemcell struct {
			Name    string `yaml:"name"`
			Version string `yaml:"version"`
		} `yaml:"stemcell"`
		CloudProperties struct {
			RAM  int64   `yaml:"ram"`
			CPU  float64 `yaml:"cpu"`
			Disk int64   `yaml:"disk"`
		} `yaml:"cloud_properties"`
		Env map[string]any `yaml:"env"`
	} `yaml:"resource_pools"`
	DiskPools []DiskType `yaml:"disk_pools"`
	Jobs      []struct {
		Name      string `yaml:"name"`
		Instances int    `yaml:"instances"`
		Template  any    `yaml:"template"` // a name or a list of names (oldest form)
		Templates []struct {
			Name     string         `yaml:"name"`
			Release  string         `yaml:"release"`
			Consumes map[string]any `yaml:"consumes"`
			Provides map[string]any `yaml:"provides"`
		} `yaml:"templates"`
		ResourcePool   string         `yaml:"resource_pool"`
		PersistentDisk int            `yaml:"persistent_disk"`
		DiskPool       string         `yaml:"persistent_disk_pool"`
		Networks       []NetworkRef   `yaml:"networks"`
		Properties     map[string]any `yaml:"properties"`
		Lifecycle      string         `yaml:"lifecycle"`
		Update         *Update        `yaml:"update"`
	} `yaml:"jobs"`
}

// parseV1 maps a v1 manifest onto the v2 model: each resource pool a
// stemcell alias and a vm_type, each job an instance group whose
// templates are its jobs (the job's properties, then the global ones,
// are theirs), and the manifest's networks, pools and compilation its
// own cloud config.
func parseV1(file string, src []byte) (*Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var v v1
	if err := dec.Decode(&v); err != nil {
		return nil, yamlError(file, src, err)
	}
	m := &Manifest{Name: v.Name, DirectorUUID: v.DirectorUUID, Releases: v.Releases, Update: v.Update, Properties: v.Properties,
		cloud: &CloudConfig{Networks: v.Networks, DiskTypes: v.DiskPools}}
	if w, ok := v.Compilation["workers"].(int); ok {
		m.cloud.Compilation.Workers = w
	}
	for _, rp := range v.ResourcePools {
		if rp.Stemcell.Name == "" {
			return nil, fmt.Errorf("%s: resource_pools %s: stemcell.name is required", file, rp.Name)
		}
		m.Stemcells = append(m.Stemcells, StemcellRef{Alias: rp.Name, Name: rp.Stemcell.Name, Version: rp.Stemcell.Version})
		vt := VMType{Name: rp.Name}
		vt.CloudProperties.RAM, vt.CloudProperties.CPU, vt.CloudProperties.Disk = rp.CloudProperties.RAM, rp.CloudProperties.CPU, rp.CloudProperties.Disk
		m.cloud.VMTypes = append(m.cloud.VMTypes, vt)
	}
	for _, j := range v.Jobs {
		found := false
		for _, rp := range v.ResourcePools {
			found = found || rp.Name == j.ResourcePool
		}
		if !found {
			return nil, fmt.Errorf("%s: jobs %s: resource_pool %q is not in resource_pools", file, j.Name, j.ResourcePool)
		}
		g := InstanceGroup{Name: j.Name, Instances: j.Instances, Stemcell: j.ResourcePool, VMType: j.ResourcePool,
			PersistentDisk: j.PersistentDisk, PersistentDiskType: j.DiskPool, Networks: j.Networks, Lifecycle: j.Lifecycle,
			Update: j.Update, Properties: j.Properties}
		for _, t := range j.Templates {
			rel := t.Release
			if rel == "" && len(v.Releases) == 1 {
				rel = v.Releases[0].Name
			}
			g.Jobs = append(g.Jobs, JobRef{Name: t.Name, Release: rel, Consumes: t.Consumes, Provides: t.Provides})
		}
		var names []any
		switch t := j.Template.(type) {
		case string:
			names = []any{t}
		case []any:
			names = t
		}
		for _, n := range names {
			if len(v.Releases) != 1 {
				return nil, fmt.Errorf("%s: jobs %s: template: without templates' release, the manifest must have one release", file, j.Name)
			}
			g.Jobs = append(g.Jobs, JobRef{Name: fmt.Sprint(n), Release: v.Releases[0].Name})
		}
		m.InstanceGroups = append(m.InstanceGroups, g)
	}
	return m, nil
}

// syntaxPlace finds src's YAML syntax error with goccy/go-yaml's parser:
// its line, column and message.
func syntaxPlace(src []byte) (line, col int, msg string, ok bool) {
	_, err := goyamlparser.ParseBytes(src, 0)
	var se *goyaml.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil {
		return 0, 0, "", false
	}
	return se.Token.Position.Line, se.Token.Position.Column, se.Message, true
}
