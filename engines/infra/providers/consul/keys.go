package consulprovider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// keysResource is consul_keys: the keys its key blocks name. A key with
// delete = true is deleted when its block goes or the resource is
// destroyed; others are left in the store, as the provider does.
type keysResource struct{}

var (
	_ provider.Resource    = keysResource{}
	_ provider.StateBacked = keysResource{}
)

func (keysResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "Keys of the Consul KV store (hashicorp/consul's consul_keys), written to cairn's discovery engine.",
		Attributes: map[string]*provider.Attribute{
			"datacenter": dcAttr,
			"key": {Type: provider.Blocks, Optional: true, Description: "Specifies a key in Consul to be written. Supported values documented below.",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"path":    {Type: provider.String, Required: true, Description: "This is the path in Consul that should be written to."},
					"value":   {Type: provider.String, Optional: true, Description: "The value to write to the given path."},
					"default": {Type: provider.String, Optional: true, Description: "This is the default value to set for var.<name> if the key does not exist in Consul. Defaults to an empty string."},
					"delete":  {Type: provider.Bool, Optional: true, Default: false, Description: "If true, then the key will be deleted when either its configuration block is removed from the configuration or the entire resource is destroyed. Otherwise, it will be left in Consul. Defaults to false."},
					"flags":   {Type: provider.Number, Optional: true, Default: int64(0), Description: "An unsigned integer value to attach to the key (defaults to 0)."},
				}}},
		},
	}
}

// ID is a nonce made with the object (the provider's is "consul").
func (keysResource) ID(provider.Values) (string, error) { return "", nil }

func (keysResource) Validate(v provider.Values, known map[string]bool) error {
	if err := checkDC(v); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, k := range v.Blocks("key") {
		p := str(k, "path")
		if p == "" || strings.HasPrefix(p, "/") {
			return fmt.Errorf("key path %q: a path is not empty and does not start with /", p)
		}
		if seen[p] {
			return fmt.Errorf("key path %q is given twice", p)
		}
		seen[p] = true
	}
	return nil
}

func (keysResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("consul_keys is read through the paths state keeps")
}

// ReadState reads every key state names: a key gone or changed by hand
// shows as a change of its block.
func (keysResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	out := prior.Clone()
	var keys []map[string]any
	for _, k := range prior.Blocks("key") {
		k = maps.Clone(k)
		if _, ok := k["value"]; ok {
			v, flags, found := ss.d.KVGet(str(k, "path"))
			if found {
				k["value"], k["flags"] = string(v), int64(flags)
			} else {
				delete(k, "value")
			}
		}
		keys = append(keys, k)
	}
	out["key"] = keys
	return out, true, nil
}

func (keysResource) write(ctx context.Context, ss *session, keys []map[string]any) error {
	for _, k := range keys {
		if _, ok := k["value"]; !ok {
			continue // read-only key
		}
		if err := ss.d.KVPut(ctx, ss.actor, str(k, "path"), []byte(str(k, "value")), uint64(intOf(k, "flags"))); err != nil {
			return fmt.Errorf("put %s: %w", str(k, "path"), err)
		}
	}
	return nil
}

func (r keysResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	if err := r.write(ctx, ss, planned.Blocks("key")); err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	out := planned.Clone()
	out["id"] = "consul-" + hex.EncodeToString(b)
	return out, nil
}

func (r keysResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	if err := r.write(ctx, ss, planned.Blocks("key")); err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, k := range planned.Blocks("key") {
		keep[str(k, "path")] = true
	}
	for _, k := range prior.Blocks("key") {
		if p := str(k, "path"); !keep[p] && boolOf(k, "delete") {
			if err := ss.d.KVDelete(ctx, ss.actor, p); err != nil {
				return nil, fmt.Errorf("delete %s: %w", p, err)
			}
		}
	}
	return planned, nil
}

func (keysResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ss, err := sessionOf(s)
	if err != nil {
		return err
	}
	for _, k := range prior.Blocks("key") {
		if boolOf(k, "delete") {
			if err := ss.d.KVDelete(ctx, ss.actor, str(k, "path")); err != nil {
				return fmt.Errorf("delete %s: %w", str(k, "path"), err)
			}
		}
	}
	return nil
}

// prefixResource is consul_key_prefix: every key under path_prefix, the
// ones subkeys and subkey blocks give, and no other (others found there
// are deleted by the next apply, as the provider does).
type prefixResource struct{}

var (
	_ provider.Resource    = prefixResource{}
	_ provider.StateBacked = prefixResource{}
)

func (prefixResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "Every key under a prefix of the Consul KV store (hashicorp/consul's consul_key_prefix); id is the prefix.",
		Attributes: map[string]*provider.Attribute{
			"datacenter":  dcAttr,
			"path_prefix": {Type: provider.String, Required: true, ForceNew: true, Description: "Specifies the common prefix shared by all keys that will be managed by this resource instance. In most cases this will end with a slash, to manage a \"folder\" of keys."},
			"subkeys":     {Type: provider.StringMap, Optional: true, Description: "A mapping from subkey name (which will be appended to the given path_prefix) to the value that should be stored at that key. Use slashes, as shown in the above example, to create \"sub-folders\" under the given path prefix."},
			"subkey": {Type: provider.Blocks, Optional: true, Description: "A subkey to add. Supported values documented below. Multiple blocks supported.",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"path":  {Type: provider.String, Required: true, Description: "This is the path (which will be appended to the given path_prefix) in Consul that should be written to."},
					"value": {Type: provider.String, Required: true, Description: "The value to write to the given path."},
					"flags": {Type: provider.Number, Optional: true, Default: int64(0), Description: "An unsigned integer value to attach to the key (defaults to 0)."},
				}}},
		},
	}
}

func (prefixResource) ID(v provider.Values) (string, error) {
	p := v.String("path_prefix")
	if p == "" {
		return "", errors.New("path_prefix is empty")
	}
	return p, nil
}

func (prefixResource) Validate(v provider.Values, known map[string]bool) error {
	if err := checkDC(v); err != nil {
		return err
	}
	if v.Has("path_prefix") && strings.HasPrefix(v.String("path_prefix"), "/") {
		return fmt.Errorf("path_prefix %q must not start with /", v.String("path_prefix"))
	}
	for _, b := range v.Blocks("subkey") {
		if _, dup := v.Map("subkeys")[str(b, "path")]; dup {
			return fmt.Errorf("subkey %q is given in subkeys and in a subkey block", str(b, "path"))
		}
	}
	return nil
}

func (prefixResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("consul_key_prefix is read through the state it keeps")
}

// ReadState lists the prefix: keys of subkey blocks fill their blocks,
// every other key is a subkey (so one added by hand shows as a change).
func (prefixResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	all := ss.d.KVList(id)
	out := prior.Clone()
	var blocks []map[string]any
	inBlock := map[string]bool{}
	for _, b := range prior.Blocks("subkey") {
		b = maps.Clone(b)
		if v, ok := all[id+str(b, "path")]; ok {
			b["value"] = string(v)
			_, flags, _ := ss.d.KVGet(id + str(b, "path"))
			b["flags"] = int64(flags)
			inBlock[id+str(b, "path")] = true
			blocks = append(blocks, b)
		}
	}
	sub := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if !inBlock[k] {
			sub[strings.TrimPrefix(k, id)] = string(all[k])
		}
	}
	if len(sub) > 0 || prior.Has("subkeys") {
		out["subkeys"] = sub
	}
	out["subkey"] = blocks
	return out, true, nil
}

func (prefixResource) sync(ctx context.Context, ss *session, id string, planned provider.Values) error {
	want := map[string]struct {
		v     string
		flags uint64
	}{}
	for k, v := range planned.Map("subkeys") {
		want[id+k] = struct {
			v     string
			flags uint64
		}{v, 0}
	}
	for _, b := range planned.Blocks("subkey") {
		want[id+str(b, "path")] = struct {
			v     string
			flags uint64
		}{str(b, "value"), uint64(intOf(b, "flags"))}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if err := ss.d.KVPut(ctx, ss.actor, k, []byte(want[k].v), want[k].flags); err != nil {
			return fmt.Errorf("put %s: %w", k, err)
		}
	}
	for k := range ss.d.KVList(id) {
		if _, ok := want[k]; !ok {
			if err := ss.d.KVDelete(ctx, ss.actor, k); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
	}
	return nil
}

func (r prefixResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	id := planned.String("path_prefix")
	if len(ss.d.KVList(id)) > 0 {
		return nil, fmt.Errorf("%d keys exist under %q already; consul_key_prefix manages every key under its prefix, so it is not made over others' keys (delete them, or choose another prefix)", len(ss.d.KVList(id)), id)
	}
	return planned, r.sync(ctx, ss, id, planned)
}

func (r prefixResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	return planned, r.sync(ctx, ss, id, planned)
}

func (prefixResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ss, err := sessionOf(s)
	if err != nil {
		return err
	}
	for k := range ss.d.KVList(id) {
		if err := ss.d.KVDelete(ctx, ss.actor, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return nil
}

// keysData is data consul_keys: keys read by name into var.
type keysData struct{}

var _ provider.DataSource = keysData{}

func (keysData) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "Reads keys of the Consul KV store (hashicorp/consul's data consul_keys) from cairn's discovery engine.",
		Attributes: map[string]*provider.Attribute{
			"datacenter": dcAttr,
			"key": {Type: provider.Blocks, Optional: true, Description: "Specifies a key in Consul to be read. Supported values documented below. Multiple blocks supported.",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"name":    {Type: provider.String, Required: true, Description: "This is the name of the key. This value of the key is exposed as var.<name>. This is not the path of the key in Consul."},
					"path":    {Type: provider.String, Required: true, Description: "This is the path in Consul that should be read or written to."},
					"default": {Type: provider.String, Optional: true, Description: "This is the default value to set for var.<name> if the key does not exist in Consul. Defaults to an empty string."},
				}}},
			"var": {Type: provider.StringMap, Computed: true, Description: "For each name given, the corresponding attribute has the value of the key."},
		},
	}
}

func (keysData) Read(ctx context.Context, s provider.Session, args provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	if err := checkDC(args); err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, k := range args.Blocks("key") {
		v, _, found := ss.d.KVGet(str(k, "path"))
		if found {
			vars[str(k, "name")] = string(v)
		} else {
			vars[str(k, "name")] = str(k, "default")
		}
	}
	out := args.Clone()
	out["var"] = vars
	return out, nil
}
