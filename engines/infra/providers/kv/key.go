package kvprovider

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// keyResource is the kv_key resource type: one key and its value, named
// by the key.
type keyResource struct{}

var _ provider.Resource = keyResource{}

func (keyResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A key of cairn's key-value store and its value.",
		Attributes: map[string]*provider.Attribute{
			"key":   {Type: provider.String, Required: true, ForceNew: true, Description: "The key; also its ID."},
			"value": {Type: provider.String, Required: true, Description: "The value, as text."},
		},
	}
}

func (keyResource) ID(v provider.Values) (string, error) {
	k := v.String("key")
	if k == "" {
		return "", errEmptyKey
	}
	return k, nil
}

var errEmptyKey = errors.New("key is empty: a kv_key needs a non-empty key")

func (keyResource) Validate(v provider.Values, known map[string]bool) error {
	var errs []error
	switch {
	case v.Has("key") && v.String("key") == "":
		errs = append(errs, errEmptyKey)
	case !v.Has("key") && !known["key"]:
		errs = append(errs, errors.New("key is required"))
	}
	if !v.Has("value") && !known["value"] {
		errs = append(errs, errors.New("value is required"))
	}
	return errors.Join(errs...)
}

func (keyResource) Read(ctx context.Context, s provider.Session, id string) (provider.Values, bool, error) {
	ks, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	value, found, err := ks.get(ctx, id)
	if err != nil || !found {
		return nil, false, err
	}
	return provider.Values{"key": id, "value": value}, true, nil
}

func (keyResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	return put(ctx, s, planned)
}

func (keyResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return put(ctx, s, planned)
}

func put(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ks, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	key, value := planned.String("key"), planned.String("value")
	if key == "" {
		return nil, errEmptyKey
	}
	if _, err := ks.kv.Put(ctx, ks.actor, []byte(key), []byte(value)); err != nil {
		return nil, fmt.Errorf("put %q: %w", key, err)
	}
	return provider.Values{"key": key, "value": value}, nil
}

func (keyResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ks, err := sessionOf(s)
	if err != nil {
		return err
	}
	// A key already gone is deleted all the same.
	if _, err := ks.kv.Delete(ctx, ks.actor, []byte(id)); err != nil {
		return fmt.Errorf("delete %q: %w", id, err)
	}
	return nil
}

// get reads key's value as text.
func (ks *session) get(ctx context.Context, key string) (string, bool, error) {
	b, found, err := ks.kv.Get(ctx, []byte(key))
	if err != nil {
		return "", false, fmt.Errorf("get %q: %w", key, err)
	}
	if !found {
		return "", false, nil
	}
	if !utf8.Valid(b) {
		return "", false, fmt.Errorf("the value of %q is not valid UTF-8: the kv provider manages text values", key)
	}
	return string(b), true, nil
}

// keyData is the kv_key data source: it reads a key the configuration
// does not manage.
type keyData struct{}

var _ provider.DataSource = keyData{}

func (keyData) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "Reads a key of cairn's key-value store.",
		Attributes: map[string]*provider.Attribute{
			"key":   {Type: provider.String, Required: true, Description: "The key."},
			"value": {Type: provider.String, Computed: true, Description: "Its value, as text."},
		},
	}
}

func (keyData) Read(ctx context.Context, s provider.Session, args provider.Values) (provider.Values, error) {
	ks, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	key := args.String("key")
	if key == "" {
		return nil, errEmptyKey
	}
	value, found, err := ks.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("key %q does not exist in the kv store", key)
	}
	return provider.Values{"key": key, "value": value}, nil
}
