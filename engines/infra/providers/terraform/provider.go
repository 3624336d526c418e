// Package terraformprovider is Terraform's built-in provider
// (terraform.io/builtin/terraform): terraform_data, which holds a value
// (input, answered as output) and is replaced when triggers_replace
// changes. terraform_remote_state is not offered: cairn's state is its
// journal, and other configurations' outputs are read with infra output.
package terraformprovider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func init() { provider.Register(New()) }

// New returns the built-in terraform provider: terraform_data.
func New() *provider.Stateless {
	return &provider.Stateless{ProviderName: "terraform", ProviderSource: "terraform.io/builtin/terraform",
		Types: map[string]provider.Resource{"terraform_data": dataResource{}}}
}

type dataResource struct{}

var (
	_ provider.Resource    = dataResource{}
	_ provider.StateBacked = dataResource{}
)

func (dataResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A value kept in state (Terraform's terraform_data): output is input; a change of triggers_replace replaces it.",
		Attributes: map[string]*provider.Attribute{
			"input":            {Type: provider.Dynamic, Optional: true, Description: "A value which will be stored in the instance state, and reflected in the output attribute after apply."},
			"triggers_replace": {Type: provider.Dynamic, Optional: true, ForceNew: true, Description: "A value which is stored in the instance state, and will force replacement when the value changes."},
			"output":           {Type: provider.Dynamic, Computed: true, UpdateComputes: true, Description: "The computed value derived from the input argument."},
		},
	}
}

// ID is a UUID made with the object.
func (dataResource) ID(provider.Values) (string, error) { return "", nil }

func (dataResource) Validate(provider.Values, map[string]bool) error { return nil }

func (dataResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("terraform_data lives in state only")
}

func (dataResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	return prior, true, nil
}

func uuid() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func (dataResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	id, err := uuid()
	if err != nil {
		return nil, err
	}
	out := planned.Clone()
	out["output"], out["id"] = planned["input"], id
	return out, nil
}

func (dataResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	out := planned.Clone()
	out["output"] = planned["input"]
	return out, nil
}

func (dataResource) Delete(context.Context, provider.Session, string, provider.Values) error {
	return nil
}
