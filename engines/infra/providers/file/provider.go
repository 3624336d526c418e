// Package fileprovider is the infra engine's file provider: the file and
// directory resource types, which manage UTF-8 text files and directories
// on the daemon's host, and the file data source, which reads one.
//
// Both resource types are named by their absolute path, which is also
// their import ID. They never create what the configuration does not
// declare (a file's parent directory must exist) and never remove what
// they did not make (a directory goes only when it is empty).
package fileprovider

import (
	"context"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/internal/ascaller"
)

func init() { provider.Register(New()) }

// Provider is the file provider.
type Provider struct{}

var _ provider.Provider = (*Provider)(nil)

// New returns the file provider.
func New() *Provider { return &Provider{} }

// Name returns "file".
func (*Provider) Name() string { return "file" }

// Resources returns the file and directory resource types.
func (*Provider) Resources() map[string]provider.Resource {
	return map[string]provider.Resource{
		"file":      fileResource{},
		"directory": dirResource{},
	}
}

// DataSources returns the file data source.
func (*Provider) DataSources() map[string]provider.DataSource {
	return map[string]provider.DataSource{"file": fileData{}}
}

// Open returns a session. It holds only who the work is for: the file
// system is cheap to ask again, and a cached stat would go stale with
// every write.
func (*Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	a := env.Actor
	if a.Via == "system" {
		return session{}, nil
	}
	return session{cred: ascaller.Cred{UID: a.UID, GID: a.GID, Groups: a.Groups}}, nil
}

// session carries the caller whose credentials every file operation takes.
type session struct{ cred ascaller.Cred }

func (session) Close() error { return nil }
