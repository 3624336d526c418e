package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// files is a release's content: slash paths relative to its root.
type files map[string][]byte

// readDir reads a release directory (or a .tgz) into memory, the paths
// relative to its root. It runs with the caller's credentials.
func readRelease(root string) (files, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return readTgz(root)
	}
	out := files{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == ".dev_builds" || d.Name() == ".final_builds" || d.Name() == "dev_releases" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = b
		return nil
	})
	return out, err
}

// readTgz reads a release tarball, and the jobs/JOB.tgz and
// packages/PKG.tgz inside it as the directories a dev release has.
func readTgz(p string) (files, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	outer, err := untgz(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	out := files{}
	for name, b := range outer {
		name = strings.TrimPrefix(name, "./")
		dir, base := path.Split(name)
		if (dir == "jobs/" || dir == "packages/") && strings.HasSuffix(base, ".tgz") {
			inner, err := untgz(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", p, name, err)
			}
			for n, c := range inner {
				out[dir+strings.TrimSuffix(base, ".tgz")+"/"+strings.TrimPrefix(n, "./")] = c
			}
			continue
		}
		out[name] = b
	}
	return out, nil
}

func untgz(r io.Reader) (files, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	out := files{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if strings.Contains(h.Name, "..") {
			return nil, fmt.Errorf("%s: a path outside the archive", h.Name)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<30))
		if err != nil {
			return nil, err
		}
		out[path.Clean(h.Name)] = b
	}
}

// Release is an uploaded release: its jobs and packages by name.
type Release struct {
	Name     string              `json:"name"`
	Version  string              `json:"version"`
	Jobs     map[string]*Job     `json:"jobs"`
	Packages map[string]*Package `json:"packages"`
}

// Job is a release's job: its spec and the fingerprint of its files,
// stored under <data>/deploy/jobs/FINGERPRINT.
type Job struct {
	Name        string            `json:"name" yaml:"name"`
	Templates   map[string]string `json:"templates" yaml:"templates"`
	Packages    []string          `json:"packages" yaml:"packages"`
	Properties  map[string]Prop   `json:"properties" yaml:"properties"`
	Provides    []LinkDef         `json:"provides" yaml:"provides"`
	Consumes    []LinkDef         `json:"consumes" yaml:"consumes"`
	Fingerprint string            `json:"fingerprint" yaml:"-"`
	Monit       bool              `json:"monit" yaml:"-"`
}

// Prop is a property a job's spec declares.
type Prop struct {
	Description string `json:"description,omitempty" yaml:"description"`
	Default     any    `json:"default,omitempty" yaml:"default"`
}

// LinkDef is a link a job provides or consumes.
type LinkDef struct {
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type" yaml:"type"`
	Optional   bool     `json:"optional,omitempty" yaml:"optional"`
	Properties []string `json:"properties,omitempty" yaml:"properties"`
}

// Package is a release's package: its source (packaging script and
// files) stored under <data>/deploy/packages/FINGERPRINT.
type Package struct {
	Name         string   `json:"name" yaml:"name"`
	Dependencies []string `json:"dependencies" yaml:"dependencies"`
	Files        []string `json:"files" yaml:"files"`
	Fingerprint  string   `json:"fingerprint" yaml:"-"`
}

// parsed is a release read from its files: the release and, by
// fingerprint, the files of each job and package.
type parsed struct {
	rel      *Release
	jobFiles map[string]files // fingerprint -> files
	pkgFiles map[string]files
}

// parseRelease reads a release in BOSH's layout: release.MF (name,
// version), jobs/JOB/{spec,monit,templates/*}, packages/PKG/{spec,
// packaging} with the spec's files from src/ (or the package directory
// itself, as in a built release's package).
func parseRelease(fsys files) (*parsed, error) {
	mf, ok := fsys["release.MF"]
	if !ok {
		return nil, errors.New("release.MF: not found (a release directory has release.MF, jobs/ and packages/)")
	}
	var head struct {
		Name    string `yaml:"name"`
		Version any    `yaml:"version"`
	}
	if err := yaml.Unmarshal(mf, &head); err != nil {
		return nil, yamlError("release.MF", mf, err)
	}
	if head.Name == "" || head.Version == nil {
		return nil, errors.New("release.MF: name and version are required")
	}
	p := &parsed{rel: &Release{Name: head.Name, Version: fmt.Sprint(head.Version), Jobs: map[string]*Job{}, Packages: map[string]*Package{}},
		jobFiles: map[string]files{}, pkgFiles: map[string]files{}}
	for _, dir := range subdirs(fsys, "jobs/") {
		j, fl, err := parseJob(fsys, dir)
		if err != nil {
			return nil, err
		}
		p.rel.Jobs[j.Name] = j
		p.jobFiles[j.Fingerprint] = fl
	}
	for _, dir := range subdirs(fsys, "packages/") {
		pk, fl, err := parsePackage(fsys, dir)
		if err != nil {
			return nil, err
		}
		p.rel.Packages[pk.Name] = pk
		p.pkgFiles[pk.Fingerprint] = fl
	}
	for _, j := range p.rel.Jobs {
		for _, name := range j.Packages {
			if p.rel.Packages[name] == nil {
				return nil, fmt.Errorf("jobs/%s/spec: package %s is not in the release", j.Name, name)
			}
		}
	}
	for _, pk := range p.rel.Packages {
		for _, name := range pk.Dependencies {
			if p.rel.Packages[name] == nil {
				return nil, fmt.Errorf("packages/%s/spec: dependency %s is not in the release", pk.Name, name)
			}
		}
	}
	if len(p.rel.Jobs) == 0 {
		return nil, errors.New("jobs/: the release has no job")
	}
	return p, nil
}

// subdirs lists the directories directly under prefix.
func subdirs(fsys files, prefix string) []string {
	seen := map[string]bool{}
	for name := range fsys {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			if d, _, ok := strings.Cut(rest, "/"); ok {
				seen[prefix+d] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func parseJob(fsys files, dir string) (*Job, files, error) {
	specPath := dir + "/spec"
	b, ok := fsys[specPath]
	if !ok {
		return nil, nil, fmt.Errorf("%s: not found", specPath)
	}
	var j Job
	if err := yaml.Unmarshal(b, &j); err != nil {
		return nil, nil, yamlError(specPath, b, err)
	}
	if j.Name == "" {
		j.Name = path.Base(dir)
	}
	fl := files{"spec": b}
	if m, ok := fsys[dir+"/monit"]; ok {
		fl["monit"] = m
		j.Monit = true
	}
	for src := range j.Templates {
		t, ok := fsys[dir+"/templates/"+src]
		if !ok {
			return nil, nil, fmt.Errorf("%s: template %s: no file %s/templates/%s", specPath, src, dir, src)
		}
		fl["templates/"+src] = t
	}
	j.Fingerprint = fingerprint(fl, nil)
	return &j, fl, nil
}

func parsePackage(fsys files, dir string) (*Package, files, error) {
	specPath := dir + "/spec"
	b, ok := fsys[specPath]
	if !ok {
		return nil, nil, fmt.Errorf("%s: not found", specPath)
	}
	var pk Package
	if err := yaml.Unmarshal(b, &pk); err != nil {
		return nil, nil, yamlError(specPath, b, err)
	}
	if pk.Name == "" {
		pk.Name = path.Base(dir)
	}
	script, ok := fsys[dir+"/packaging"]
	if !ok {
		return nil, nil, fmt.Errorf("%s/packaging: not found (a package is built by its packaging script)", dir)
	}
	fl := files{"packaging": script}
	for _, glob := range pk.Files {
		n := 0
		for name, content := range fsys {
			for _, base := range []string{"src/", "blobs/", dir + "/"} {
				rel, ok := strings.CutPrefix(name, base)
				if ok && globMatch(glob, rel) {
					fl[rel] = content
					n++
				}
			}
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("%s: files: %s matches no file under src/ or blobs/", specPath, glob)
		}
	}
	pk.Fingerprint = fingerprint(fl, pk.Dependencies)
	return &pk, fl, nil
}

// globMatch matches a BOSH files glob: path.Match, with "**" standing
// for any number of directories.
func globMatch(glob, name string) bool {
	if ok, _ := path.Match(glob, name); ok {
		return true
	}
	if before, after, ok := strings.Cut(glob, "**/"); ok {
		if !strings.HasPrefix(name, before) {
			return false
		}
		rest := strings.TrimPrefix(name, before)
		for {
			if ok, _ := path.Match(after, rest); ok {
				return true
			}
			_, next, found := strings.Cut(rest, "/")
			if !found {
				return false
			}
			rest = next
		}
	}
	return false
}

// fingerprint is the sha256 of the files (names and contents, sorted)
// and of the names of the dependencies.
func fingerprint(fl files, deps []string) string {
	h := sha256.New()
	names := make([]string, 0, len(fl))
	for n := range fl {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(fl[n]))
		h.Write(fl[n])
	}
	d := append([]string(nil), deps...)
	sort.Strings(d)
	fmt.Fprintf(h, "deps\x00%s", strings.Join(d, ","))
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// writeFiles writes fl under dir (made anew).
func writeFiles(dir string, fl files) error {
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	for name, b := range fl {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}
