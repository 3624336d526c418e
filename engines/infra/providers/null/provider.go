// Package nullprovider is hashicorp/null under Terraform's schema:
// null_resource, which does nothing and is replaced when its triggers
// change (provisioners, which gave it its use in Terraform, cairn does
// not have: its triggers still order and replace what depends on it).
package nullprovider

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func init() { provider.Register(New()) }

// New returns the null provider: null_resource (null_data_source is
// deprecated in the provider; locals do its work).
func New() *provider.Stateless {
	return &provider.Stateless{ProviderName: "null", ProviderSource: "hashicorp/null",
		Types: map[string]provider.Resource{"null_resource": nullResource{}}}
}

type nullResource struct{}

var (
	_ provider.Resource    = nullResource{}
	_ provider.StateBacked = nullResource{}
)

func (nullResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A resource that does nothing; replaced when triggers change (hashicorp/null's null_resource).",
		Attributes: map[string]*provider.Attribute{
			"triggers": {Type: provider.StringMap, Optional: true, ForceNew: true, Description: "A map of arbitrary strings that, when changed, will force the null resource to be replaced, re-running any associated provisioners."},
		},
	}
}

// ID is a random number, made with the object, as the provider's.
func (nullResource) ID(provider.Values) (string, error) { return "", nil }

func (nullResource) Validate(provider.Values, map[string]bool) error { return nil }

func (nullResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("null_resource lives in state only")
}

func (nullResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	return prior, true, nil
}

func (nullResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	out := planned.Clone()
	out["id"] = strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>1, 10)
	return out, nil
}

func (nullResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return planned, nil
}

func (nullResource) Delete(context.Context, provider.Session, string, provider.Values) error {
	return nil
}
