// Package localprovider is hashicorp/local under Terraform's schemas:
// local_file and local_sensitive_file (resources and data sources).
//
// As the provider does, a file's id is the SHA-1 of its content, and a
// file whose content no longer has that digest (or that is gone) is made
// again by the next apply. Every read and write runs with the filesystem
// credentials of whoever asked for the plan or apply.
package localprovider

import (
	"context"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/internal/ascaller"
)

func init() { provider.Register(New()) }

// Provider is the local provider.
type Provider struct{}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Sourced  = (*Provider)(nil)
)

// New returns the local provider.
func New() *Provider { return &Provider{} }

// Name returns "local".
func (*Provider) Name() string { return "local" }

// Source is the Terraform provider it stands for.
func (*Provider) Source() string { return "hashicorp/local" }

// Resources returns local_file and local_sensitive_file.
func (*Provider) Resources() map[string]provider.Resource {
	return map[string]provider.Resource{
		"local_file":           fileResource{},
		"local_sensitive_file": fileResource{sensitive: true},
	}
}

// DataSources returns local_file and local_sensitive_file.
func (*Provider) DataSources() map[string]provider.DataSource {
	return map[string]provider.DataSource{
		"local_file":           fileData{},
		"local_sensitive_file": fileData{sensitive: true},
	}
}

// Open returns a session holding who the work is for.
func (*Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	a := env.Actor
	if a.Via == "system" {
		return session{self: true}, nil
	}
	return session{cred: ascaller.Cred{UID: a.UID, GID: a.GID, Groups: a.Groups}}, nil
}

type session struct {
	cred ascaller.Cred
	self bool // the daemon's own work: as itself
}

func (session) Close() error { return nil }

// as runs fn with the session's caller's filesystem credentials.
func as[T any](s provider.Session, fn func() (T, error)) (T, error) {
	var v T
	ss, _ := s.(session)
	run := func() error {
		var err error
		v, err = fn()
		return err
	}
	if ss.self {
		return v, run()
	}
	return v, ascaller.Do(ss.cred, run)
}
