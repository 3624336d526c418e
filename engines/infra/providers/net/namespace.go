package netprovider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// namespaceResource is net_namespace: a named network namespace, as ip
// netns add makes it.
type namespaceResource struct{}

var _ provider.Resource = namespaceResource{}

var namespaceSchema = &provider.Schema{
	Description: "A named network namespace (ip netns): a bind mount of the namespace at /run/netns/NAME.",
	Attributes: map[string]*provider.Attribute{
		"name": {Type: provider.String, Required: true, ForceNew: true,
			Description: "The name ip netns shows."},
	},
}

func (namespaceResource) Schema() *provider.Schema { return namespaceSchema }

func (namespaceResource) ID(v provider.Values) (string, error) {
	if v.String("name") == "" {
		return "", errors.New("net_namespace: name is not known")
	}
	return v.String("name"), nil
}

func (namespaceResource) Validate(v provider.Values, known map[string]bool) error {
	return checkKnown(v, "name", func(s string) error {
		if s == "" {
			return errors.New("name: a namespace needs a name")
		}
		return checkNamespaceName(s)
	})
}

func (namespaceResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	if err := checkNamespaceName(id); err != nil || id == "" {
		return nil, false, fmt.Errorf("namespace id %q: want the namespace's name", id)
	}
	fd, _, err := openNamespace(id)
	if isNoNamespace(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	fd.Close()
	return provider.Values{"name": id}, true, nil
}

func (namespaceResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	name := planned.String("name")
	if err := addNamespace(name); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	return provider.Values{"name": name}, nil
}

// addNamespace does what ip netns add does: a new network namespace, bind
// mounted at /run/netns/NAME, with /run/netns a shared mount so that the
// namespace shows in every mount namespace that shares it.
func addNamespace(name string) error {
	if err := checkNamespaceName(name); err != nil || name == "" {
		return fmt.Errorf("namespace name %q: not a name ip netns accepts", name)
	}
	if err := shareRunDir(); err != nil {
		return err
	}
	path := filepath.Join(runDir, name)
	if _, err := os.Lstat(path); err == nil {
		if fd, _, err := openNamespace(name); err == nil {
			fd.Close()
			return unix.EEXIST
		}
		return fmt.Errorf("%s exists but is no namespace: remove it, or ip netns del %s", path, name)
	}
	// NewNamed moves the calling thread into the new namespace: a thread of
	// its own, which dies with it.
	return onOwnThread(func() error {
		fd, err := netns.NewNamed(name)
		if err != nil {
			// NewNamed leaves the file it made when the mount fails.
			if !errors.Is(err, os.ErrExist) {
				os.Remove(path)
			}
			return err
		}
		return fd.Close()
	})
}

// shareRunDir makes /run/netns a shared mount, as ip netns add does, bind
// mounting it on itself first when it is no mount point.
func shareRunDir() error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", runDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if !errors.Is(err, unix.EINVAL) {
		return wrapMount(err)
	}
	if err := unix.Mount(runDir, runDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return wrapMount(err)
	}
	return wrapMount(unix.Mount("", runDir, "none", unix.MS_SHARED|unix.MS_REC, ""))
}

func wrapMount(err error) error {
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", runDir, err)
	}
	return nil
}

// Update has nothing to change: the name forces a new namespace.
func (namespaceResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return provider.Values{"name": id}, nil
}

// Delete does what ip netns del does: unmount and remove the name. The
// namespace itself ends when nothing holds it any more (a process in it, a
// socket, a session's handle).
func (namespaceResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	if err := checkNamespaceName(id); err != nil || id == "" {
		return fmt.Errorf("namespace id %q: want the namespace's name", id)
	}
	path := filepath.Join(runDir, id)
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete namespace %s: unmount %s: %w", id, path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", id, err)
	}
	// The session's handle in the namespace keeps it alive until the
	// session ends; from now on the session sees the name as unused.
	if sess, err := sessionOf(s); err == nil {
		sess.forget(id)
	}
	return nil
}
