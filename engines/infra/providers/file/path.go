package fileprovider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// checkPath reports whether p can name a managed file or directory: an
// absolute, clean path, so that one object has one ID.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("path is empty: give an absolute path, such as /etc/cairn/motd")
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %q contains a NUL byte", p)
	case !filepath.IsAbs(p):
		return fmt.Errorf("path %q is not absolute: give an absolute path, such as /etc/cairn/motd", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("path %q is not clean: write it as %q", p, filepath.Clean(p))
	}
	return nil
}

// validatePath checks the path attribute of v as Validate sees it.
func validatePath(v map[string]any, known map[string]bool) error {
	p, set := v["path"].(string)
	if !set {
		if known["path"] {
			return nil // set in the configuration, known only at apply
		}
		return errors.New("path is required")
	}
	return checkPath(p)
}

// notFound reports whether err means the path does not exist: ENOTDIR
// too, as a path under a regular file cannot exist.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// checkParent refuses a path whose parent directory is missing: cairn
// creates only what the configuration declares.
func checkParent(path string) error {
	parent := filepath.Dir(path)
	fi, err := os.Stat(parent)
	switch {
	case notFound(err):
		return fmt.Errorf("parent directory %s does not exist; declare a directory resource for it", parent)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("parent %s is not a directory", parent)
	}
	return nil
}

// syncDir makes a directory's entries durable: a rename, create or remove
// in it survives a crash once this returns.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
