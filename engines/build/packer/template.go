// Package packer reads Packer templates — the legacy JSON format and HCL2
// (*.pkr.hcl) — into one model the build engine runs: builders,
// provisioners with only/except, and chains of post-processors. It is a
// pure reader: variables come in, no file but the template and its
// var-files is read, nothing runs.
package packer

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Template is a Packer template, either format.
type Template struct {
	// Path is the template's file.
	Path string
	// Format is "json" or "hcl2".
	Format string
	// Digest is the sha256 of the template's bytes (of its files in name
	// order, for a directory).
	Digest string
	// Sensitive names the variables whose values are not recorded
	// (JSON's sensitive-variables, HCL2's sensitive = true).
	Sensitive []string
	Builders  []Builder
	// Variables are the variables' values, as resolved.
	Variables map[string]string
	// Warnings are Packer's warnings: values given for no variable.
	Warnings []string
}

// Builder is one builder (a JSON builder, an HCL2 source used by a build).
type Builder struct {
	Name string // the build's name: JSON's name or type, HCL2's TYPE.NAME
	Type string
	// Fields of Packer's docker builder, which the oci builder shares.
	Image      string
	Commit     bool
	Changes    []string
	ExportPath string
	RunCommand []string
	Pull       bool
	// Ignored lists the fields set that do nothing here (warned about).
	Ignored []string
	// The build's provisioners and post-processors: JSON's are every
	// builder's, HCL2's those of the build block that uses the source.
	Provisioners   []Provisioner
	PostProcessors [][]PostProcessor // each a chain: a step's artifact feeds the next
}

// Provisioner is one provisioner.
type Provisioner struct {
	Type           string
	Only, Except   []string
	Inline         []string
	InlineShebang  string
	Script         string
	Scripts        []string
	EnvVars        []string
	ExecuteCommand string
	Source         string
	Sources        []string
	Destination    string
	Direction      string
	Command        string
}

// PostProcessor is one post-processor of a chain.
type PostProcessor struct {
	Type              string
	Only, Except      []string
	Output            string
	ChecksumTypes     []string
	Repository        string
	Tags              []string
	Inline            []string
	Command           string
	KeepInputArtifact bool
	StripPath         bool
}

// Runnable are the builder types that run here.
var Runnable = []string{"docker", "oci"}

// Error is a template error at a place.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Select applies only= and except= (names or globs of builds) and checks
// that every selected builder can run here.
func (t *Template) Select(only, except []string) ([]Builder, error) {
	match := func(pats []string, name string) bool {
		for _, p := range pats {
			if ok, _ := path.Match(p, name); ok || p == name {
				return true
			}
			// JSON names a build by its name; HCL2 also by its type.
			if _, typ, ok := strings.Cut(name, "."); ok && p == typ {
				return true
			}
		}
		return false
	}
	var out []Builder
	var bad []string
	for _, b := range t.Builders {
		if len(only) > 0 && !match(only, b.Name) && !match(only, b.Type) {
			continue
		}
		if match(except, b.Name) || match(except, b.Type) {
			continue
		}
		if !slices.Contains(Runnable, b.Type) {
			bad = append(bad, fmt.Sprintf("builder %q has type %s, which cannot run here", b.Name, b.Type))
			continue
		}
		out = append(out, b)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %s (the types available: %s; leave it out with except=%s)", t.Path, strings.Join(bad, "; "), strings.Join(Runnable, ", "), strings.Join(badNames(t, only, except), ","))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no builder left to run after only= and except=", t.Path)
	}
	return out, nil
}

func badNames(t *Template, only, except []string) []string {
	var names []string
	for _, b := range t.Builders {
		if !slices.Contains(Runnable, b.Type) {
			names = append(names, b.Name)
		}
	}
	sort.Strings(names)
	return names
}

// Applies says whether a provisioner's or post-processor's only/except
// let it run for the build named name.
func Applies(only, except []string, name, typ string) bool {
	in := func(l []string) bool { return slices.Contains(l, name) || slices.Contains(l, typ) }
	if len(only) > 0 && !in(only) {
		return false
	}
	return !in(except)
}

// Redacted are the variables' values with the sensitive ones (and those
// whose names say secret, password, token or key) replaced, for the record.
func (t *Template) Redacted() map[string]any {
	out := map[string]any{}
	for k, v := range t.Variables {
		lk := strings.ToLower(k)
		if slices.Contains(t.Sensitive, k) || strings.Contains(lk, "secret") || strings.Contains(lk, "password") || strings.Contains(lk, "token") || strings.Contains(lk, "key") {
			v = "<redacted>"
		}
		out[k] = v
	}
	return out
}
