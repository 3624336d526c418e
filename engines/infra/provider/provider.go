// Package provider is the contract between the infra engine and the things
// it manages: a provider (net, file, kv) offers resource types, each with a
// schema and the read, create, update, delete and import operations the
// engine calls while it plans and applies.
//
// Providers see plain Go values, never HCL or cty: a string, an int64, a
// bool or a []string per attribute, nil for null. Unknown values never reach
// a provider: the engine applies a resource only once everything it refers
// to is known.
package provider

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/cairnhq/cairn/journal"
)

// Type is an attribute's type.
type Type int

const (
	String Type = iota
	Number      // an integer, int64
	Bool
	StringList // []string
	StringMap  // map[string]string
	// Dynamic is any value (terraform_data's input): its Go form is what
	// encoding/json decodes its JSON into (int64 or float64 for numbers).
	Dynamic
	// Blocks is a nested block type (consul_keys' key {} blocks), which
	// dynamic blocks may generate: its Go form is a []map[string]any, one
	// map per block, by the attributes of the attribute's Block schema.
	Blocks
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "bool"
	case StringList:
		return "list(string)"
	case StringMap:
		return "map(string)"
	case Dynamic:
		return "any"
	case Blocks:
		return "blocks"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Attribute describes one attribute of a resource type.
//
// Required: the configuration must set it. Optional: it may. Computed: the
// provider fills it in (after create, or from reality when the
// configuration leaves it out); Optional+Computed is an attribute the
// configuration may set and the kernel defaults otherwise, such as a link's
// mtu. ForceNew: changing it replaces the object (Terraform's "forces
// replacement"). Sensitive: its value is never shown or journaled, only a
// digest of it.
type Attribute struct {
	Type      Type
	Required  bool
	Optional  bool
	Computed  bool
	ForceNew  bool
	Sensitive bool
	// UpdateComputes marks a computed attribute an in-place update may
	// change (a file's sha256): a plan shows it as known after apply.
	UpdateComputes bool
	Default        any // the value when the configuration leaves it out (not for Computed)
	Description    string
	// Block is the schema of a Blocks attribute's blocks (their
	// attributes: strings, numbers, bools, lists and maps of strings), and
	// MaxItems, when not 0, the most blocks there may be.
	Block    *Schema
	MaxItems int
}

// Schema describes a resource or data source type.
type Schema struct {
	Description string
	Attributes  map[string]*Attribute
}

// Names returns the schema's attribute names, sorted.
func (s *Schema) Names() []string {
	names := make([]string, 0, len(s.Attributes))
	for n := range s.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Values are the attributes of one object: string, int64, bool, []string,
// map[string]string or a JSON-decoded value by the schema's type, nil (or
// absent) for null.
type Values map[string]any

// String returns v[name] as a string ("" when null).
func (v Values) String(name string) string { s, _ := v[name].(string); return s }

// Int returns v[name] as an int64 (0 when null).
func (v Values) Int(name string) int64 { n, _ := v[name].(int64); return n }

// Bool returns v[name] as a bool (false when null).
func (v Values) Bool(name string) bool { b, _ := v[name].(bool); return b }

// List returns v[name] as a []string (nil when null).
func (v Values) List(name string) []string { l, _ := v[name].([]string); return l }

// Map returns v[name] as a map[string]string (nil when null).
func (v Values) Map(name string) map[string]string {
	m, _ := v[name].(map[string]string)
	return m
}

// Blocks returns v[name], a Blocks attribute, as one map per block (nil
// when there are none), whether it comes from a configuration or back
// from state.
func (v Values) Blocks(name string) []map[string]any {
	switch l := v[name].(type) {
	case []map[string]any:
		return l
	case []any:
		out := make([]map[string]any, 0, len(l))
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// Has reports whether v[name] is set (not null).
func (v Values) Has(name string) bool { return v[name] != nil }

// Clone returns a shallow copy of v with lists copied.
func (v Values) Clone() Values {
	out := make(Values, len(v))
	for k, x := range v {
		if l, ok := x.([]string); ok {
			x = append([]string(nil), l...)
		}
		out[k] = x
	}
	return out
}

// Env is what the engine hands a provider for one plan or apply.
type Env struct {
	// Actor is who asked for the plan or apply; providers that write into
	// cairn itself (kv) record it.
	Actor journal.Actor
	// Services are what other engines offer (engines.Services), looked up
	// by name: the kv provider looks up "kv".
	Services interface{ Lookup(name string) any }
	// HostKey is a secret of this daemon (kept in its data directory,
	// mode 0600): a StateBacked type derives from it the secrets it must
	// not journal (random_password's result), again on every read.
	HostKey []byte
}

// Session is one plan's or apply's view of reality. A provider caches
// what it reads in it (the net provider dumps each namespace once) and
// forgets what a write made stale. The engine uses a session from one
// goroutine per resource, concurrently across resources: a session must be
// safe for concurrent use.
type Session interface {
	Close() error
}

// Resource is one resource type of a provider.
type Resource interface {
	// Schema describes the type's attributes.
	Schema() *Schema
	// ID names the object the given values denote, such as "ns1/br0" for a
	// link br0 in the netns ns1. It is computed from configuration values
	// alone (ForceNew attributes), so a plan knows it before any apply;
	// import takes the same form.
	ID(v Values) (string, error)
	// Validate checks configuration values beyond types (a vxlan needs a
	// vni). Unknown values are nil here and must not be reported missing
	// when the attribute is set in the configuration (known is the set of
	// attribute names the configuration sets).
	Validate(v Values, known map[string]bool) error
	// Read returns the object id denotes as reality has it, or found=false
	// when it does not exist. It reads through the session's cache.
	Read(ctx context.Context, s Session, id string) (v Values, found bool, err error)
	// Create makes the object and returns its values, computed ones filled.
	Create(ctx context.Context, s Session, planned Values) (Values, error)
	// Update changes the object from prior to planned (no ForceNew
	// attribute differs) and returns its new values.
	Update(ctx context.Context, s Session, id string, prior, planned Values) (Values, error)
	// Delete removes the object.
	Delete(ctx context.Context, s Session, id string, prior Values) error
}

// DataSource is one data source type of a provider: it only reads.
type DataSource interface {
	Schema() *Schema
	// Read returns the data for the configured arguments, computed
	// attributes filled.
	Read(ctx context.Context, s Session, args Values) (Values, error)
}

// Change says, for a drift watcher, that objects in a scope may have
// changed: for the net provider the scope is a namespace name ("" is the
// daemon's own).
type Change struct {
	Scope string
}

// Provider is a named set of resource and data source types.
type Provider interface {
	// Name is the provider's name ("net", "file", "kv"). Type names are
	// unique across providers: net_link, file, directory, kv_key.
	Name() string
	Resources() map[string]Resource
	DataSources() map[string]DataSource
	// Open starts a session for one plan, apply or refresh.
	Open(ctx context.Context, env Env) (Session, error)
}

// Sourced is implemented by a provider that stands for a Terraform
// provider: Source is its registry source ("hashicorp/random"), which a
// configuration's required_providers names.
type Sourced interface {
	Source() string
}

// Redacted stands, in the prior values ReadState is given, for a
// sensitive attribute state keeps as a digest only: the attribute is set,
// its value is not known. A provider answers the value (reading it, or
// deriving it again), or leaves Redacted{} and the engine compares the
// configuration with the digest.
type Redacted struct{}

// StateBacked is implemented by a resource type whose objects live in
// state only (random values, null_resource, time_static), or are read
// through what state keeps of them (a local_file's filename): the engine
// calls ReadState, never Read, with what state keeps of the object
// (sensitive attributes as Redacted{}), and answers found=false to have
// it made again (a time_rotating past its rotation).
//
// Its ID may answer "" when the id is known only once the object is made
// (a random one): Create then answers the id as the value "id".
type StateBacked interface {
	ReadState(ctx context.Context, s Session, id string, prior Values) (v Values, found bool, err error)
}

// Watcher is implemented by a provider that can tell when reality changes
// under it (the net provider, through netlink subscriptions).
type Watcher interface {
	// Scope returns the scope an object of the given type and values lives
	// in, or ok=false when objects of the type are not watched.
	Scope(typ string, v Values) (scope string, ok bool)
	// Watch calls changed whenever something in one of scopes may have
	// changed, until ctx ends. It returns once it is subscribed (changes
	// after the return are seen) and runs in its own goroutines. A scope
	// that cannot be watched (a namespace that does not exist yet) is
	// skipped and reported through the returned error list.
	Watch(ctx context.Context, scopes []string, changed func(Change)) []error
}

var (
	mu        sync.Mutex
	providers = map[string]Provider{}
)

// Register makes a provider known. It panics on a duplicate name, as a
// wiring mistake is a bug.
func Register(p Provider) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := providers[p.Name()]; dup {
		panic(fmt.Sprintf("infra: provider %q registered twice", p.Name()))
	}
	providers[p.Name()] = p
}

// All returns the registered providers by name.
func All() map[string]Provider {
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]Provider, len(providers))
	for k, v := range providers {
		out[k] = v
	}
	return out
}

// Error is an error from a provider operation the engine shows with the
// resource's address: Op is "create", "update", "delete", "read".
type Error struct {
	Op  string
	ID  string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.ID, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Unsupported is returned (wrapped) when the kernel or machine lacks what a
// resource needs, such as a link kind; tests skip on it with its reason.
type Unsupported struct{ Reason string }

func (e *Unsupported) Error() string { return "unsupported here: " + e.Reason }

// Normalizer is implemented by a resource type whose attributes have
// several spellings of one reality (an owner "root" reads back as
// "root:root"): the engine normalizes known configured values before it
// compares them with what Read returns, so a plan stays empty.
type Normalizer interface {
	Normalize(v Values) Values
}

// Private is implemented by a resource or data source type whose objects
// may hold what only some local users can read, such as a file that is not
// world-readable: PrivateAttrs names the attributes of v the journal keeps
// as a digest, as it keeps sensitive ones, because every reader of the
// journal sees its events. The caller who asked still sees the plan.
type Private interface {
	PrivateAttrs(v Values) []string
}
