package dockerprovider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
	"github.com/cairnhq/cairn/engines/runtime/containerspec"
)

// containerResource is docker_container: a runtime container, started
// (must_run) and kept running.
type containerResource struct{}

var (
	_ provider.Resource    = containerResource{}
	_ provider.StateBacked = containerResource{}
)

func (containerResource) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "A container of the runtime engine (kreuzwerker/docker's docker_container); id is the container's.",
		Attributes: map[string]*provider.Attribute{
			"name":     {Type: provider.String, Required: true, ForceNew: true, Description: "The name of the container."},
			"image":    {Type: provider.String, Required: true, ForceNew: true, Description: "The ID of the image to back this container. The easiest way to get this value is to use the image_id attribute of the docker_image resource."},
			"command":  {Type: provider.StringList, Optional: true, ForceNew: true, Description: "The command to use to start the container. For example, to run /usr/bin/myprogram -f baz.conf set the command to be [\"/usr/bin/myprogram\",\"-f\",\"baz.conf\"]."},
			"env":      {Type: provider.StringList, Optional: true, ForceNew: true, Description: "Environment variables to set in the form of KEY=VALUE, e.g. DEBUG=0"},
			"hostname": {Type: provider.String, Optional: true, ForceNew: true, Description: "Hostname of the container."},
			"memory":   {Type: provider.Number, Optional: true, ForceNew: true, Description: "The memory limit for the container in MBs."},
			"restart":  {Type: provider.String, Optional: true, ForceNew: true, Default: "no", Description: "The restart policy for the container. Must be one of 'no', 'on-failure', 'always', 'unless-stopped'. Defaults to no. (cairn makes the container again to change it.)"},
			"must_run": {Type: provider.Bool, Optional: true, Default: true, Description: "If true, then the Docker container will be kept running. If false, then as long as the container exists, Terraform assumes it is successful. Defaults to true."},
			"ports": {Type: provider.Blocks, Optional: true, Description: "Publish a container's port(s) to the host.",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"internal": {Type: provider.Number, Required: true, Description: "Port within the container."},
					"external": {Type: provider.Number, Optional: true, Description: "Port exposed out of the container. If not given a free random port >= 32768 will be used."},
					"ip":       {Type: provider.String, Optional: true, Default: "0.0.0.0", Description: "IP address/mask that can access this port. Defaults to 0.0.0.0."},
					"protocol": {Type: provider.String, Optional: true, Default: "tcp", Description: "Protocol that can be used over this port. Defaults to tcp."},
				}}},
			"volumes": {Type: provider.Blocks, Optional: true, Description: "Spec for mounting volumes in the container (host paths only).",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"container_path": {Type: provider.String, Required: true, Description: "The path in the container where the volume will be mounted."},
					"host_path":      {Type: provider.String, Required: true, Description: "The path on the host where the volume is coming from."},
					"read_only":      {Type: provider.Bool, Optional: true, Default: false, Description: "If true, this volume will be readonly. Defaults to false."},
				}}},
			"networks_advanced": {Type: provider.Blocks, Optional: true, MaxItems: 1, Description: "The networks the container is attached to: cairn's runtime has bridge (the default), host and none.",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"name": {Type: provider.String, Required: true, Description: "The name or id of the network to use."},
				}}},
			"network_data": {Type: provider.Blocks, Computed: true, Description: "The data of the networks the container is connected to.",
				Block: &provider.Schema{Attributes: map[string]*provider.Attribute{
					"network_name": {Type: provider.String, Computed: true},
					"ip_address":   {Type: provider.String, Computed: true},
				}}},
		},
	}
}

func (containerResource) ID(provider.Values) (string, error) { return "", nil }

func (containerResource) Validate(v provider.Values, known map[string]bool) error {
	for _, p := range v.Blocks("ports") {
		if n := intOf(p, "internal"); n < 1 || n > 65535 {
			return fmt.Errorf("ports: internal %d is not a port", n)
		}
		if e := intOf(p, "external"); e < 0 || e > 65535 {
			return fmt.Errorf("ports: external %d is not a port", e)
		}
		if pr := str(p, "protocol"); pr != "" && pr != "tcp" && pr != "udp" {
			return fmt.Errorf("ports: protocol %q is not tcp or udp", pr)
		}
		if intOf(p, "external") == 0 {
			return errors.New("ports: external is required here (cairn's runtime does not pick a random host port)")
		}
	}
	for _, n := range v.Blocks("networks_advanced") {
		switch str(n, "name") {
		case "bridge", "host", "none":
		default:
			return fmt.Errorf("networks_advanced: network %q: cairn's runtime has the networks bridge, host and none", str(n, "name"))
		}
	}
	if r := v.String("restart"); v.Has("restart") && !slices.Contains([]string{"no", "on-failure", "always", "unless-stopped"}, r) {
		return fmt.Errorf("restart %q must be one of no, on-failure, always, unless-stopped", r)
	}
	return nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func intOf(m map[string]any, k string) int64 {
	switch n := m[k].(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

func (containerResource) Read(context.Context, provider.Session, string) (provider.Values, bool, error) {
	return nil, false, errors.New("docker_container is read through the state it keeps")
}

// ReadState inspects the container: gone, it is made again; stopped while
// it must run, must_run reads false and the apply starts it.
func (containerResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, false, err
	}
	info, err := ss.c.Inspect(id)
	if err != nil {
		return nil, false, nil
	}
	out := prior.Clone()
	if prior.Bool("must_run") && !info.Running {
		out["must_run"] = false
	}
	out["network_data"] = networkData(prior, info)
	return out, true, nil
}

func networkData(v provider.Values, info containerspec.Info) []map[string]any {
	name := "bridge"
	for _, n := range v.Blocks("networks_advanced") {
		name = str(n, "name")
	}
	return []map[string]any{{"network_name": name, "ip_address": info.IP}}
}

func (containerResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	spec := containerspec.Spec{Image: planned.String("image"), Name: planned.String("name"), Cmd: planned.List("command"),
		Env: planned.List("env"), Hostname: planned.String("hostname"), Memory: planned.Int("memory") << 20, Restart: planned.String("restart")}
	for _, p := range planned.Blocks("ports") {
		pub := strconv.FormatInt(intOf(p, "external"), 10) + ":" + strconv.FormatInt(intOf(p, "internal"), 10)
		if ip := str(p, "ip"); ip != "" && ip != "0.0.0.0" {
			pub = ip + ":" + pub
		}
		if str(p, "protocol") == "udp" {
			pub += "/udp"
		}
		spec.Publish = append(spec.Publish, pub)
	}
	for _, vol := range planned.Blocks("volumes") {
		b := str(vol, "host_path") + ":" + str(vol, "container_path")
		if ro, _ := vol["read_only"].(bool); ro {
			b += ":ro"
		}
		spec.Binds = append(spec.Binds, b)
	}
	for _, n := range planned.Blocks("networks_advanced") {
		spec.Network = str(n, "name")
	}
	info, err := ss.c.Create(ctx, ss.actor, spec)
	if err != nil {
		return nil, err
	}
	if planned.Bool("must_run") {
		if err := ss.c.Start(ctx, ss.actor, info.ID); err != nil {
			_ = ss.c.Remove(context.WithoutCancel(ctx), ss.actor, info.ID)
			return nil, fmt.Errorf("start %s: %w", planned.String("name"), err)
		}
		if info, err = ss.c.Inspect(info.ID); err != nil {
			return nil, err
		}
	}
	out := planned.Clone()
	out["network_data"] = networkData(planned, info)
	out["id"] = info.ID
	return out, nil
}

// Update starts a container that must run and does not.
func (containerResource) Update(ctx context.Context, s provider.Session, id string, prior, planned provider.Values) (provider.Values, error) {
	ss, err := sessionOf(s)
	if err != nil {
		return nil, err
	}
	if planned.Bool("must_run") {
		info, err := ss.c.Inspect(id)
		if err != nil {
			return nil, err
		}
		if !info.Running {
			if err := ss.c.Start(ctx, ss.actor, id); err != nil {
				return nil, err
			}
		}
	}
	info, err := ss.c.Inspect(id)
	if err != nil {
		return nil, err
	}
	out := prior.Clone()
	for k, v := range planned {
		out[k] = v
	}
	out["network_data"] = networkData(planned, info)
	return out, nil
}

func (containerResource) Delete(ctx context.Context, s provider.Session, id string, prior provider.Values) error {
	ss, err := sessionOf(s)
	if err != nil {
		return err
	}
	if info, err := ss.c.Inspect(id); err == nil && info.Running {
		if err := ss.c.Stop(ctx, id, 10*time.Second); err != nil {
			return err
		}
	}
	return ss.c.Remove(ctx, ss.actor, id)
}
