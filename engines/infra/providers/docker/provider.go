// Package dockerprovider is kreuzwerker/docker's docker_image and
// docker_container under Terraform's schemas, mapped onto cairn's
// runtime engine (OCI image store and runc containers) through the
// runtime.containers service it provides, as the deploy engine drives it:
// each create, start, stop and remove is the runtime verb's own path,
// journaled with the applying caller as actor.
package dockerprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/engines/runtime/containerspec"
	"github.com/cairnhq/cairn/journal"
)

func init() { provider.Register(New()) }

// serviceName is the runtime engine's service.
const serviceName = "runtime.containers"

// Containers is what this provider needs of the runtime engine.
type Containers interface {
	ImageID(ref string) (string, error)
	Create(ctx context.Context, actor journal.Actor, spec containerspec.Spec) (containerspec.Info, error)
	Start(ctx context.Context, actor journal.Actor, ref string) error
	Stop(ctx context.Context, ref string, grace time.Duration) error
	Remove(ctx context.Context, actor journal.Actor, ref string) error
	Inspect(ref string) (containerspec.Info, error)
}

// Provider is the docker provider.
type Provider struct{}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Sourced  = (*Provider)(nil)
)

// New returns the docker provider.
func New() *Provider { return &Provider{} }

// Name returns "docker".
func (*Provider) Name() string { return "docker" }

// Source is the Terraform provider it stands for.
func (*Provider) Source() string { return "kreuzwerker/docker" }

// Resources returns docker_image and docker_container.
func (*Provider) Resources() map[string]provider.Resource {
	return map[string]provider.Resource{
		"docker_image":     imageResource{},
		"docker_container": containerResource{},
	}
}

// DataSources returns none yet.
func (*Provider) DataSources() map[string]provider.DataSource { return nil }

var errNotRunning = errors.New("the runtime engine is not running in this daemon")

// Open looks up the runtime engine.
func (*Provider) Open(ctx context.Context, env provider.Env) (provider.Session, error) {
	if env.Services == nil {
		return nil, errNotRunning
	}
	c, ok := env.Services.Lookup(serviceName).(Containers)
	if !ok {
		return nil, errNotRunning
	}
	return &session{c: c, actor: env.Actor}, nil
}

type session struct {
	c     Containers
	actor journal.Actor
}

func (*session) Close() error { return nil }

func sessionOf(s provider.Session) (*session, error) {
	ss, ok := s.(*session)
	if !ok || ss == nil {
		return nil, fmt.Errorf("docker provider: given a %T, not a docker session", s)
	}
	return ss, nil
}

// imageResource is docker_image: an image of the runtime's store, named.
// cairn pulls nothing here: the image must be in the store (image import,
// image pull); its id is the image's.
type imageResource struct{}

var (
	_ provider.Resource    = imageResource{}
	_ provider.StateBacked = imageResource{}
)

func (imageResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "An image of the runtime engine's store (kreuzwerker/docker's docker_image); it must be there already (image import or image pull): cairn pulls nothing on apply.",
		Attributes: map[string]*provider.Attribute{
			"name":          {Type: provider.String, Required: true, ForceNew: true, Description: "The name of the Docker image, including any tags or SHA256 repo digests."},
			"keep_locally":  {Type: provider.Bool, Optional: true, Description: "If true, then the Docker image won't be deleted on destroy operation. cairn never deletes the image from the store."},
			"pull_triggers": {Type: provider.StringList, Optional: true, ForceNew: true, Description: "List of values which cause an image pull when changed."},
			"image_id":      {Type: provider.String, Computed: true, Description: "The ID of the image (as seen when executing docker inspect on the image). Can be used to reference the image via its ID in other resources."},
			"repo_digest":   {Type: provider.String, Computed: true, Description: "The image sha256 digest in the form of repo[:tag]@sha256:<hash>."},
		},
	}
}

func (imageResource) ID(provider.Values) (string, error) { return "", nil }

func (imageResource) Validate(v provider.Values, known map[string]bool) error {
	if v.Has("name") && v.String("name") == "" {
		return errors.New("name is empty")
	}
	return nil
}

func (imageResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("docker_image is read through the name state keeps")
}

func (imageResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	got, err := ss.c.ImageID(prior.String("name"))
	if err != nil || got != id {
		return nil, false, nil // gone, or the name now names another image
	}
	return prior, true, nil
}

func (imageResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	id, err := ss.c.ImageID(planned.String("name"))
	if err != nil {
		return nil, fmt.Errorf("image %q is not in the runtime's store (%v): cairn pulls nothing on apply; bring it in with image import or image pull first", planned.String("name"), err)
	}
	out := planned.Clone()
	out["image_id"], out["repo_digest"], out["id"] = id, planned.String("name")+"@"+id, id
	return out, nil
}

func (imageResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	out := prior.Clone()
	out["keep_locally"] = planned["keep_locally"]
	return out, nil
}

// Delete leaves the image in the store: other containers may use it.
func (imageResource) Delete(context.Context, provider.Session, string, provider.Values) error {
	return nil
}
