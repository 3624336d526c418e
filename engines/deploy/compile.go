package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairnhq/cairn/engines/runtime/containerspec"
	"github.com/cairnhq/cairn/journal"
)

// compiledDir is where a package compiled on a stemcell lives.
func (m *module) compiledDir(fp, imageID string) string {
	return filepath.Join(m.dir, "compiled", fp+"-"+shortID(imageID))
}

func shortID(id string) string {
	if i := len("sha256:"); len(id) > i && id[:i] == "sha256:" {
		id = id[i:]
	}
	return id[:min(12, len(id))]
}

// compile compiles pkgs (dependencies first) on the stemcell, each once
// per stemcell: a package compiled before, by fingerprint, is reused.
// Packages whose dependencies are compiled run side by side, workers at
// a time, each in a compilation container.
func (m *module) compile(ctx context.Context, actor journal.Actor, task int, pkgs []*Package, st *Stemcell, workers int) error {
	if workers < 1 {
		workers = 1
	}
	done := map[string]bool{}
	for len(done) < len(pkgs) {
		var ready []*Package
		for _, p := range pkgs {
			if done[p.Name] {
				continue
			}
			ok := true
			for _, d := range p.Dependencies {
				ok = ok && done[d]
			}
			if ok {
				ready = append(ready, p)
			}
		}
		if len(ready) == 0 {
			return fmt.Errorf("packages depend on each other in a cycle")
		}
		sem := make(chan struct{}, workers)
		errs := make([]error, len(ready))
		var wg sync.WaitGroup
		for i, p := range ready {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				errs[i] = m.compileOne(ctx, actor, task, p, pkgs, st)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		for _, p := range ready {
			done[p.Name] = true
		}
	}
	return nil
}

func (m *module) compileOne(ctx context.Context, actor journal.Actor, task int, p *Package, all []*Package, st *Stemcell) error {
	key := p.Fingerprint + "/" + st.ImageID
	m.mu.Lock()
	cached := m.st.Compiled[key]
	m.mu.Unlock()
	out := m.compiledDir(p.Fingerprint, st.ImageID)
	if cached {
		if _, err := os.Stat(out); err == nil {
			return nil
		}
	}
	work, err := os.MkdirTemp(m.dir, "compile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := copyDir(m.pkgSrcDir(p.Fingerprint), src); err != nil {
		return fmt.Errorf("compile %s: %w", p.Name, err)
	}
	install := filepath.Join(work, "install")
	if err := os.MkdirAll(install, 0o755); err != nil {
		return err
	}
	binds := []string{src + ":/var/vcap/data/compile/" + p.Name, install + ":/var/vcap/packages/" + p.Name}
	byName := map[string]*Package{}
	for _, q := range all {
		byName[q.Name] = q
	}
	for _, d := range p.Dependencies {
		binds = append(binds, m.compiledDir(byName[d].Fingerprint, st.ImageID)+":/var/vcap/packages/"+d+":ro")
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "compile." + p.Name + "." + hex.EncodeToString(rnd[:])
	info, err := m.rt.Create(ctx, journal.SystemActor(), containerspec.Spec{
		Image: st.ImageID, Name: name, Network: "none", Binds: binds,
		Cmd: []string{"/bin/sh", "-ec", "cd /var/vcap/data/compile/" + p.Name + " && sh -e ./packaging"},
		Env: []string{"BOSH_COMPILE_TARGET=/var/vcap/data/compile/" + p.Name, "BOSH_INSTALL_TARGET=/var/vcap/packages/" + p.Name,
			"BOSH_PACKAGE_NAME=" + p.Name, "BOSH_PACKAGE_VERSION=" + p.Fingerprint},
	})
	if err != nil {
		return fmt.Errorf("compile %s: %w", p.Name, err)
	}
	defer func() { _ = m.rt.Remove(context.WithoutCancel(ctx), journal.SystemActor(), info.ID) }()
	if err := m.rt.Start(ctx, journal.SystemActor(), info.ID); err != nil {
		return fmt.Errorf("compile %s: %w", p.Name, err)
	}
	code, err := m.rt.Wait(ctx, info.ID)
	if err != nil {
		return fmt.Errorf("compile %s: %w", p.Name, err)
	}
	m.record(ctx, actor, "deploy.compile", p.Name, map[string]any{"task": task, "package": p.Name, "fingerprint": p.Fingerprint,
		"stemcell": st.Name + "/" + st.Version, "container": name, "exit_code": code})
	if code != 0 {
		return fmt.Errorf("compile %s: packaging exited %d (its output: logs %s is gone; events stream=logs where 'container.name == %q')", p.Name, code, name, name)
	}
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.Rename(install, out); err != nil {
		return err
	}
	m.mu.Lock()
	m.st.Compiled[key] = true
	m.saveLocked()
	m.mu.Unlock()
	return nil
}

// copyDir copies a tree of regular files and directories.
func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
}
