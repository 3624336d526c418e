package infra

import (
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

// The configuration and var-files of a plan are read with the caller's
// filesystem credentials (internal/ascaller): the kernel, not a mode-bit
// pre-check, judges each file, directory and symlink, at the moment of the
// read. What the daemon does on its own (drift checks) reads as itself.

// credOf is who file work is done for.
func credOf(a journal.Actor) ascaller.Cred {
	if a.Via == "system" {
		return ascaller.Cred{UID: os.Geteuid(), GID: os.Getegid()}
	}
	return ascaller.Cred{UID: a.UID, GID: a.GID, Groups: a.Groups}
}

// loadConfig reads the configuration in dir as a does.
func loadConfig(a journal.Actor, dir string) (*config.Config, hcl.Diagnostics, error) {
	var cfg *config.Config
	var diags hcl.Diagnostics
	err := ascaller.Do(credOf(a), func() error {
		cfg, diags = config.Load(dir)
		return nil
	})
	return cfg, diags, err
}

// variableValues reads the variables (var-files included) as a does.
func variableValues(a journal.Actor, cfg *config.Config, in config.Inputs) (map[string]cty.Value, hcl.Diagnostics, error) {
	var vars map[string]cty.Value
	var diags hcl.Diagnostics
	err := ascaller.Do(credOf(a), func() error {
		vars, diags = cfg.VariableValues(in)
		return nil
	})
	return vars, diags, err
}

// fileReader reads files for file() and templatefile() as a does; a file
// other users cannot read (no o+r, or a directory above without o+x) is
// private, as the file provider's content is (docs/security.md).
func fileReader(a journal.Actor) config.ReadFunc {
	return func(path string) ([]byte, bool, error) {
		var b []byte
		err := ascaller.Do(credOf(a), func() error {
			var err error
			b, err = os.ReadFile(path)
			return err
		})
		return b, err == nil && !worldReadable(path), err
	}
}

// worldReadable reports whether every local user may read path: o+r on
// it and o+x on every directory above it (permission bits only; anything
// that cannot be told counts as private).
func worldReadable(path string) bool {
	path, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return false
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
	}
}
