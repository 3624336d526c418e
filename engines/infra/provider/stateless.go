package provider

import "context"

// Stateless is a provider whose objects live in state only (Terraform's
// null_resource and terraform_data, the time provider's timestamps): it
// holds nothing between calls, so its session is empty.
type Stateless struct {
	// ProviderName is its name ("null"), and the prefix of its types.
	ProviderName string
	// ProviderSource is the Terraform provider it stands for
	// ("hashicorp/null"), as required_providers names it.
	ProviderSource string
	Types          map[string]Resource
	Data           map[string]DataSource
}

var (
	_ Provider = (*Stateless)(nil)
	_ Sourced  = (*Stateless)(nil)
)

// Name returns ProviderName.
func (p *Stateless) Name() string { return p.ProviderName }

// Source returns ProviderSource.
func (p *Stateless) Source() string { return p.ProviderSource }

// Resources returns Types.
func (p *Stateless) Resources() map[string]Resource { return p.Types }

// DataSources returns Data.
func (p *Stateless) DataSources() map[string]DataSource { return p.Data }

// Open returns an empty session: there is nothing to hold.
func (p *Stateless) Open(ctx context.Context, env Env) (Session, error) {
	return NoSession{}, nil
}

// NoSession is the session of a provider that holds nothing.
type NoSession struct{}

// Close does nothing.
func (NoSession) Close() error { return nil }
