package build

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// source is where a COPY reads from: the build context (with its
// .dockerignore) or another stage's or image's file tree. Every path goes
// through an os.Root, so neither ../ nor a symlink leads out of it.
type source struct {
	root   *os.Root
	what   string // "the build context", "stage builder", for errors
	ignore *patternmatcher.PatternMatcher
}

// readIgnore reads a .dockerignore (nil when there is none).
func readIgnore(root *os.Root, names ...string) (*patternmatcher.PatternMatcher, error) {
	for _, name := range names {
		f, err := root.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pm, err := patternmatcher.New(pats)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return pm, nil
	}
	return nil, nil
}

func (s *source) ignored(rel string) bool {
	if s.ignore == nil || rel == "." {
		return false
	}
	ok, err := s.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// copyEntry is one entry a COPY or ADD writes: a file of a source, a
// directory it creates, a heredoc's content, or a local archive ADD
// extracts.
type copyEntry struct {
	dest    string // path in the image, without the leading /
	src     string // path in the source root ("" for made entries)
	fi      fs.FileInfo
	data    []byte // heredoc content
	mode    fs.FileMode
	dir     bool
	archive bool // a tar (maybe gzipped) to extract at dest
}

// cleanSource checks a COPY source path: relative to its root, never
// above it.
func cleanSource(p string) (string, error) {
	c := path.Clean("/" + p)
	if strings.HasPrefix(path.Clean(p), "..") {
		return "", fmt.Errorf("%s: the path is outside the build context (COPY and ADD read only what is inside it)", p)
	}
	c = strings.TrimPrefix(c, "/")
	if c == "" {
		c = "."
	}
	return c, nil
}

// expand turns a COPY source, maybe a wildcard pattern, into the paths it
// names (sorted); a pattern that matches nothing and a path that does not
// exist are errors.
func (s *source) expand(p string) ([]string, error) {
	c, err := cleanSource(p)
	if err != nil {
		return nil, err
	}
	if !strings.ContainsAny(c, "*?[") {
		if _, err := s.root.Stat(c); err != nil {
			return nil, s.statError(p, err)
		}
		if s.ignored(c) {
			return nil, fmt.Errorf("%s: excluded by .dockerignore", p)
		}
		return []string{c}, nil
	}
	var out []string
	err = s.walk(".", func(rel string, fi fs.FileInfo) error {
		if ok, _ := path.Match(c, rel); ok {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no file of %s matches", p, s.what)
	}
	return out, nil
}

func (s *source) statError(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: not found in %s", p, s.what)
	}
	if strings.Contains(err.Error(), "escapes") {
		return fmt.Errorf("%s: a symlink leads outside %s: refused", p, s.what)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// walk calls fn for dir's entries below it, depth first in name order,
// lstat'ed (a symlink is an entry, never followed), skipping ignored ones.
func (s *source) walk(dir string, fn func(rel string, fi fs.FileInfo) error) error {
	f, err := s.root.Open(dir)
	if err != nil {
		return s.statError(dir, err)
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		rel := path.Join(dir, e.Name())
		if s.ignored(rel) {
			continue
		}
		fi, err := s.root.Lstat(rel)
		if err != nil {
			return s.statError(rel, err)
		}
		if err := fn(rel, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := s.walk(rel, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// isArchive says whether the file rel is a tar, plain or gzipped, as ADD
// extracts them.
func (s *source) isArchive(rel string) bool {
	f, err := s.root.Open(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := archiveReader(f)
	if err != nil {
		return false
	}
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// archiveReader reads a tar, gunzipping it when it is gzipped.
func archiveReader(f io.ReadSeeker) (io.Reader, error) {
	var magic [2]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if magic == [2]byte{0x1f, 0x8b} {
		return gzip.NewReader(f)
	}
	return f, nil
}

// digestEntries is the content digest of what a COPY writes: each
// entry's destination, type, mode, size, link and bytes. It is the part
// of a COPY's cache key that Docker takes from its sources.
func digestEntries(s *source, entries []copyEntry) (string, error) {
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%v\x00%o\x00", e.dest, e.dir, e.mode)
		switch {
		case e.data != nil:
			h.Write(e.data)
		case e.fi != nil && e.fi.Mode()&fs.ModeSymlink != 0:
			l, err := s.root.Readlink(e.src)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "link:%s", l)
		case e.fi != nil && e.fi.Mode().IsRegular():
			f, err := s.root.Open(e.src)
			if err != nil {
				return "", s.statError(e.src, err)
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("%s: %w", e.src, err)
			}
		}
		h.Write([]byte{0})
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

// heredocEntry is a COPY <<EOF file.
func heredocEntry(dest string, data string) copyEntry {
	return copyEntry{dest: dest, data: bytes.Clone([]byte(data)), mode: 0o644}
}
