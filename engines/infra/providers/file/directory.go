package fileprovider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

const defaultDirMode = "0755"

// dirResource is the directory resource type, named by its path.
type dirResource struct{}

var _ provider.Resource = dirResource{}

func (dirResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A directory. cairn removes it only when it is empty.",
		Attributes: map[string]*provider.Attribute{
			"path":  {Type: provider.String, Required: true, ForceNew: true, Description: "The directory's absolute path; also its ID."},
			"mode":  {Type: provider.String, Optional: true, Default: defaultDirMode, Description: "Permission bits as four octal digits."},
			"owner": {Type: provider.String, Optional: true, Computed: true, Description: "\"user\", \"user:group\" or \"uid:gid\"; read back as \"user:group\"."},
		},
	}
}

func (dirResource) ID(v provider.Values) (string, error) {
	p := v.String("path")
	if err := checkPath(p); err != nil {
		return "", err
	}
	return p, nil
}

func (dirResource) Validate(v provider.Values, known map[string]bool) error {
	var errs []error
	errs = append(errs, validatePath(v, known))
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

func (dirResource) read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	m, found, err := inspectDir(id)
	if err != nil || !found {
		return nil, false, err
	}
	return provider.Values{
		"path":  id,
		"mode":  formatMode(m.mode),
		"owner": formatOwner(m.uid, m.gid),
	}, true, nil
}

// inspectDir stats the directory at path. Anything else there is an
// error, a symlink to a directory too: Delete would remove the link.
func inspectDir(path string) (meta, bool, error) {
	fi, err := os.Lstat(path)
	switch {
	case notFound(err):
		return meta{}, false, nil
	case err != nil:
		return meta{}, false, err
	case !fi.IsDir():
		return meta{}, false, fmt.Errorf("%s is %s, not a directory", path, describe(fi.Mode()))
	}
	return metaOf(fi), true, nil
}

func (r dirResource) create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	path := planned.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	mode, err := modeOf(planned, defaultDirMode)
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
	// Made private, then given its owner and mode: nobody else gets in
	// between, and the umask plays no part.
	if err := os.Mkdir(path, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s already exists: import it, or remove it first", path)
		}
		return nil, err
	}
	cur, _, err := inspectDir(path)
	if err == nil {
		err = setMeta(path, cur, mode, uid, gid)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		// Leave nothing half made behind.
		_ = syscall.Rmdir(path)
		return nil, err
	}
	return r.readBack(ctx, path)
}

func (r dirResource) update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	mode, err := modeOf(planned, defaultDirMode)
	if err != nil {
		return nil, err
	}
	uid, gid, err := ownerOf(planned)
	if err != nil {
		return nil, err
	}
	cur, found, err := inspectDir(id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s no longer exists; plan again to create it", id)
	}
	if err := setMeta(id, cur, mode, uid, gid); err != nil {
		return nil, err
	}
	return r.readBack(ctx, id)
}

func (r dirResource) readBack(ctx context.Context, path string) (provider.Values, error) {
	v, found, err := r.read(ctx, nil, path)
	if err == nil && !found {
		err = fmt.Errorf("%s vanished right after it was made", path)
	}
	return v, err
}

func (dirResource) delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	if _, found, err := inspectDir(id); err != nil || !found {
		return err
	}
	err := syscall.Rmdir(id)
	switch {
	case errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("directory %s is not empty: cairn removes only what it made; empty it first", id)
	case errors.Is(err, syscall.ENOENT):
		return nil
	case err != nil:
		return &os.PathError{Op: "rmdir", Path: id, Err: err}
	}
	return syncDir(filepath.Dir(id))
}
