package fileprovider

import (
	"context"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/internal/ascaller"
)

// Every read and write of the file provider runs with the filesystem
// credentials of whoever asked for the plan or apply (internal/ascaller):
// for a non-root caller the kernel judges each path, directory search
// permission and symlink, as it would for the caller's own shell. The
// methods below only route the work; the work is in the lower-case ones.

// as runs fn with the session's caller's credentials.
func as[T any](s provider.Session, fn func() (T, error)) (T, error) {
	var v T
	err := ascaller.Do(credOf(s), func() error {
		var err error
		v, err = fn()
		return err
	})
	return v, err
}

// credOf is the caller of the session's plan or apply; root for a session
// opened without one (tests, the daemon itself).
func credOf(s provider.Session) ascaller.Cred {
	if ss, ok := s.(session); ok {
		return ss.cred
	}
	return ascaller.Cred{}
}

type found struct {
	v  provider.Values
	ok bool
}

func (r fileResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	f, err := as(s, func() (found, error) { v, ok, err := r.read(ctx, s, id); return found{v, ok}, err })
	return f.v, f.ok, err
}

func (r fileResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) { return r.create(ctx, s, planned) })
}

func (r fileResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) { return r.update(ctx, s, id, prior, planned) })
}

func (r fileResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	_, err := as(s, func() (struct{}, error) { return struct{}{}, r.delete(ctx, s, id, prior) })
	return err
}

func (r dirResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	f, err := as(s, func() (found, error) { v, ok, err := r.read(ctx, s, id); return found{v, ok}, err })
	return f.v, f.ok, err
}

func (r dirResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) { return r.create(ctx, s, planned) })
}

func (r dirResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) { return r.update(ctx, s, id, prior, planned) })
}

func (r dirResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	_, err := as(s, func() (struct{}, error) { return struct{}{}, r.delete(ctx, s, id, prior) })
	return err
}

func (d fileData) Read(ctx context.Context, s provider.Session, args provider.Values) (provider.Values, error) {
	return as(s, func() (provider.Values, error) { return d.read(ctx, s, args) })
}
