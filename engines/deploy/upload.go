package deploy

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

// uploadRelease reads a release directory or tarball with the caller's
// permissions and stores its jobs and packages by fingerprint.
func (m *module) uploadRelease(ctx context.Context, actor journal.Actor, path string) (*Release, bool, error) {
	if !filepath.IsAbs(path) {
		return nil, false, fmt.Errorf("%s: give an absolute path (the daemon reads it with your permissions)", path)
	}
	var fsys files
	if err := ascaller.Do(ascaller.Cred{UID: actor.UID, GID: actor.GID, Groups: actor.Groups}, func() error {
		var err error
		fsys, err = readRelease(path)
		return err
	}); err != nil {
		return nil, false, fmt.Errorf("read release %s: %w", path, err)
	}
	p, err := parseRelease(fsys)
	if err != nil {
		return nil, false, fmt.Errorf("release %s: %w", path, err)
	}
	rel := p.rel
	key := rel.Name + "/" + rel.Version
	m.mu.Lock()
	old := m.st.Releases[key]
	m.mu.Unlock()
	if old != nil {
		if sameRelease(old, rel) {
			return old, false, nil
		}
		return nil, false, fmt.Errorf("release %s is uploaded with other content: give the new one another version in release.MF", key)
	}
	for fp, fl := range p.jobFiles {
		if err := writeFiles(m.jobDir(fp), fl); err != nil {
			return nil, false, err
		}
	}
	for fp, fl := range p.pkgFiles {
		if err := writeFiles(m.pkgSrcDir(fp), fl); err != nil {
			return nil, false, err
		}
	}
	m.mu.Lock()
	m.st.Releases[key] = rel
	m.saveLocked()
	m.mu.Unlock()
	jobs, pkgs := names(rel.Jobs), names(rel.Packages)
	m.record(ctx, actor, "release.upload", key, map[string]any{"name": rel.Name, "version": rel.Version, "jobs": jobs, "packages": pkgs})
	return rel, true, nil
}

func names[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameRelease(a, b *Release) bool {
	if len(a.Jobs) != len(b.Jobs) || len(a.Packages) != len(b.Packages) {
		return false
	}
	for n, j := range a.Jobs {
		if b.Jobs[n] == nil || b.Jobs[n].Fingerprint != j.Fingerprint {
			return false
		}
	}
	for n, p := range a.Packages {
		if b.Packages[n] == nil || b.Packages[n].Fingerprint != p.Fingerprint {
			return false
		}
	}
	return true
}

func (m *module) jobDir(fp string) string    { return filepath.Join(m.dir, "jobs", fp) }
func (m *module) pkgSrcDir(fp string) string { return filepath.Join(m.dir, "packages", fp) }

// uploadStemcell makes an image of the runtime's store a stemcell.
func (m *module) uploadStemcell(ctx context.Context, actor journal.Actor, image, name, version string) (*Stemcell, error) {
	id, err := m.rt.ImageID(image)
	if err != nil {
		return nil, err
	}
	if name == "" || version == "" {
		return nil, fmt.Errorf("a stemcell needs name= and version=")
	}
	if !nameOK(name) {
		return nil, fmt.Errorf("name=%s: use letters, digits, - and _", name)
	}
	key := name + "/" + version
	m.mu.Lock()
	if old := m.st.Stemcells[key]; old != nil {
		m.mu.Unlock()
		if old.ImageID == id {
			return old, nil
		}
		return nil, fmt.Errorf("stemcell %s is uploaded from another image (%s): give this one another version", key, old.ImageID[:min(19, len(old.ImageID))])
	}
	st := &Stemcell{Name: name, Version: version, Image: image, ImageID: id, Uploaded: time.Now().UTC()}
	m.st.Stemcells[key] = st
	m.saveLocked()
	m.mu.Unlock()
	m.record(ctx, actor, "stemcell.upload", key, map[string]any{"name": name, "version": version, "image": image, "image_id": id})
	return st, nil
}
