package fileprovider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"unicode/utf8"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// maxContent is the largest file the provider manages: its content lives
// in the plan, the state and the journal.
const maxContent = 1 << 20

const defaultFileMode = "0644"

// fileResource is the file resource type: a regular file holding UTF-8
// text, named by its path.
type fileResource struct{}

var _ provider.Resource = fileResource{}

func (fileResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A regular file of UTF-8 text (up to 1 MiB), written atomically.",
		Attributes: map[string]*provider.Attribute{
			"path":    {Type: provider.String, Required: true, ForceNew: true, Description: "The file's absolute path; also its ID."},
			"content": {Type: provider.String, Optional: true, Default: "", Description: "The file's content."},
			"mode":    {Type: provider.String, Optional: true, Default: defaultFileMode, Description: "Permission bits as four octal digits."},
			"owner":   {Type: provider.String, Optional: true, Computed: true, Description: "\"user\", \"user:group\" or \"uid:gid\"; read back as \"user:group\"."},
			"sha256":  {Type: provider.String, Computed: true, UpdateComputes: true, Description: "The SHA-256 of the content, in hex."},
		},
	}
}

func (fileResource) ID(v provider.Values) (string, error) {
	p := v.String("path")
	if err := checkPath(p); err != nil {
		return "", err
	}
	return p, nil
}

func (fileResource) Validate(v provider.Values, known map[string]bool) error {
	return validateFile(v, known)
}

func validateFile(v provider.Values, known map[string]bool) error {
	var errs []error
	errs = append(errs, validatePath(v, known))
	if c := v.String("content"); len(c) > maxContent {
		errs = append(errs, fmt.Errorf("content is %d bytes: the file provider manages UTF-8 text files up to 1 MiB", len(c)))
	}
	if v.Has("mode") {
		_, err := parseMode(v.String("mode"))
		errs = append(errs, err)
	}
	if v.Has("owner") {
		_, err := parseOwner(v.String("owner"))
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (fileResource) read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	return readFile(id)
}

func (fileResource) create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	path := planned.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	mode, err := modeOf(planned, defaultFileMode)
	if err != nil {
		return nil, err
	}
	uid, gid, err := ownerOf(planned)
	if err != nil {
		return nil, err
	}
	if err := checkParent(path); err != nil {
		return nil, err
	}
	// Refuse to clobber what cairn did not make: an existing file is
	// imported, not overwritten.
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s already exists: import it, or remove it first", path)
	} else if !notFound(err) {
		return nil, err
	}
	if err := writeAtomic(path, []byte(planned.String("content")), mode, uid, gid); err != nil {
		return nil, err
	}
	return readBack(path)
}

func (fileResource) update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	mode, err := modeOf(planned, defaultFileMode)
	if err != nil {
		return nil, err
	}
	uid, gid, err := ownerOf(planned)
	if err != nil {
		return nil, err
	}
	cur, err := inspect(id)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("%s no longer exists; plan again to create it", id)
	}
	content := []byte(planned.String("content"))
	if cur.tooBig || !bytes.Equal(cur.content, content) {
		if uid < 0 { // keep the owner the file has
			uid, gid = cur.uid, cur.gid
		}
		if err := writeAtomic(id, content, mode, uid, gid); err != nil {
			return nil, err
		}
	} else if err := setMeta(id, cur.meta, mode, uid, gid); err != nil {
		return nil, err
	}
	return readBack(id)
}

func (fileResource) delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	fi, err := os.Lstat(id)
	switch {
	case notFound(err):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s): cairn removes only what it made", id, describe(fi.Mode()))
	}
	if err := os.Remove(id); err != nil && !notFound(err) {
		return err
	}
	return syncDir(filepath.Dir(id))
}

// fileInfo is a regular file as inspect found it; content is left out
// when the file is over maxContent.
type fileInfo struct {
	meta
	size    int64
	tooBig  bool
	content []byte
}

// inspect reads the regular file at path, or returns nil when nothing is
// there. Anything else at path (a directory, a symlink) is an error: the
// file resource would replace it.
func inspect(path string) (*fileInfo, error) {
	fi, err := os.Lstat(path)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, fi.Mode()); err != nil {
		return nil, err
	}
	// O_NOFOLLOW and the fstat below catch a swap since the lstat;
	// O_NONBLOCK keeps a fifo swapped in from blocking the open.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkRegular(path, fi.Mode()); err != nil {
		return nil, err
	}
	info := &fileInfo{meta: metaOf(fi), size: fi.Size()}
	if fi.Size() > maxContent {
		info.tooBig = true
		return info, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxContent+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	info.content, info.tooBig = b, len(b) > maxContent
	return info, nil
}

func checkRegular(path string, m fs.FileMode) error {
	switch {
	case m.IsDir():
		return fmt.Errorf("%s is a directory, not a file; declare it as a directory resource", path)
	case !m.IsRegular():
		return fmt.Errorf("%s is %s, not a regular file", path, describe(m))
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// readFile returns the file at path as the file resource's values.
func readFile(path string) (provider.Values, bool, error) {
	info, err := inspect(path)
	if err != nil || info == nil {
		return nil, false, err
	}
	switch {
	case info.tooBig:
		return nil, false, fmt.Errorf("%s is %d bytes: the file provider manages UTF-8 text files up to 1 MiB", path, info.size)
	case !utf8.Valid(info.content):
		return nil, false, fmt.Errorf("%s is not valid UTF-8: the file provider manages UTF-8 text files up to 1 MiB", path)
	}
	return provider.Values{
		"path":    path,
		"content": string(info.content),
		"mode":    formatMode(info.mode),
		"owner":   formatOwner(info.uid, info.gid),
		"sha256":  sha256Hex(info.content),
	}, true, nil
}

// readBack reads what a write just made.
func readBack(path string) (provider.Values, error) {
	v, found, err := readFile(path)
	if err == nil && !found {
		err = fmt.Errorf("%s vanished right after it was written", path)
	}
	return v, err
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeAtomic replaces path with a file holding data, so that a reader or
// a crash sees the old file or the new one, never a part: the data goes
// to a temporary file in the same directory, which gets its owner (unless
// uid is -1) and mode and is synced before it is renamed over path, and
// the directory is synced after.
func writeAtomic(path string, data []byte, mode uint32, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".cairn-write-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if uid >= 0 {
		// Before the chmod: chown clears setuid and setgid.
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(toFileMode(mode)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}
