package consulprovider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// serviceResource is consul_service: a service instance in the
// discovery engine's catalog, on cairn's own agent (node is kept as
// given).
type serviceResource struct{}

var (
	_ provider.Resource    = serviceResource{}
	_ provider.StateBacked = serviceResource{}
)

func (serviceResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A service instance in the catalog (hashicorp/consul's consul_service), registered with cairn's discovery engine; id is service_id, or name.",
		Attributes: map[string]*provider.Attribute{
			"name":       {Type: provider.String, Required: true, ForceNew: true, Description: "The name of the service."},
			"node":       {Type: provider.String, Required: true, Description: "The name of the node the to register the service on. cairn registers it on its own agent and keeps the name as given."},
			"datacenter": dcAttr,
			"address":    {Type: provider.String, Optional: true, Description: "The address of the service. Defaults to the address of the node."},
			"service_id": {Type: provider.String, Optional: true, Computed: true, ForceNew: true, Description: "If the service ID is not provided, it will be defaulted to the value of the name attribute."},
			"port":       {Type: provider.Number, Optional: true, Description: "The port of the service."},
			"tags":       {Type: provider.StringList, Optional: true, Description: "A list of values that are opaque to Consul, but can be used to distinguish between services or nodes."},
			"check": {Type: provider.Blocks, Optional: true, MaxItems: 1, Description: "Health-check to register to monitor the service (cairn's discovery engine runs one HTTP or TCP check per service).",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"check_id": {Type: provider.String, Required: true, Description: "An ID, unique per agent."},
					"name":     {Type: provider.String, Required: true, Description: "The name of the health-check."},
					"http":     {Type: provider.String, Optional: true, Description: "The HTTP endpoint to call for an HTTP check."},
					"tcp":      {Type: provider.String, Optional: true, Description: "The TCP address and port to connect to for a TCP check."},
					"interval": {Type: provider.String, Required: true, Description: "The interval to wait between each health-check invocation."},
					"timeout":  {Type: provider.String, Required: true, Description: "Specifies a timeout for outgoing connections in the case of a HTTP or TCP check."},
				}}},
		},
	}
}

func (serviceResource) ID(v provider.Values) (string, error) {
	if v.Has("service_id") {
		return v.String("service_id"), nil
	}
	if n := v.String("name"); n != "" {
		return n, nil
	}
	return "", errors.New("name is empty")
}

func (serviceResource) Validate(v provider.Values, known map[string]bool) error {
	if err := checkDC(v); err != nil {
		return err
	}
	if v.Has("port") && (v.Int("port") < 0 || v.Int("port") > 65535) {
		return fmt.Errorf("port %d is not a port", v.Int("port"))
	}
	for _, c := range v.Blocks("check") {
		if (str(c, "http") == "") == (str(c, "tcp") == "") {
			return errors.New("a check gives one of http and tcp")
		}
		for _, d := range []string{"interval", "timeout"} {
			if _, err := time.ParseDuration(str(c, d)); err != nil {
				return fmt.Errorf("check %s %q is not a duration", d, str(c, d))
			}
		}
	}
	return nil
}

func (serviceResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("consul_service is read through the state it keeps")
}

// ReadState reads the instance from the catalog; what the catalog does
// not hold (node, check) is as state has it.
func (serviceResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	name, addr, port, tags, found := ss.d.Service(id)
	if !found {
		return nil, false, nil
	}
	out := prior.Clone()
	out["name"], out["service_id"] = name, id
	if prior.Has("address") || addr != "" {
		out["address"] = addr
	}
	if prior.Has("port") || port != 0 {
		out["port"] = int64(port)
	}
	if prior.Has("tags") || len(tags) > 0 {
		out["tags"] = slices.Clone(tags)
	}
	return out, true, nil
}

func (r serviceResource) register(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	id, err := r.ID(planned)
	if err != nil {
		return nil, err
	}
	var httpURL, tcp string
	var every time.Duration
	for _, c := range planned.Blocks("check") {
		httpURL, tcp = str(c, "http"), str(c, "tcp")
		every, _ = time.ParseDuration(str(c, "interval"))
	}
	if err := ss.d.Register(ctx, ss.actor, id, planned.String("name"), planned.String("address"), int(planned.Int("port")), planned.List("tags"), httpURL, tcp, every); err != nil {
		return nil, err
	}
	out := planned.Clone()
	out["service_id"] = id
	return out, nil
}

func (r serviceResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	return r.register(ctx, s, planned)
}

func (r serviceResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	return r.register(ctx, s, planned)
}

func (serviceResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ss, err := sessionOf(s)
	if err != nil {
		return err
	}
	return ss.d.Deregister(ctx, ss.actor, id)
}
