package netprovider

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

var routes = routeResource{}

func TestRouteLifecycle(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	create(t, s, links, provider.Values{"name": "v0", "kind": "veth", "peer_name": "v1", "namespace": ns})
	create(t, s, addresses, provider.Values{"link": "v0", "cidr": "10.0.0.1/24", "namespace": ns})
	// nodad: a tentative address is no source for a route via fd00::fe.
	ip(t, "-n", ns, "addr", "add", "fd00::1/64", "dev", "v0", "nodad")

	cases := []struct {
		cfg    provider.Values
		family string
		ipDst  string
		want   provider.Values // what Create and Read return, namespace aside
	}{
		{
			cfg: provider.Values{"destination": "10.1.0.0/16", "gateway": "10.0.0.254"}, family: "-4", ipDst: "10.1.0.0/16",
			want: provider.Values{"destination": "10.1.0.0/16", "gateway": "10.0.0.254", "link": "v0", "metric": int64(0)},
		},
		{
			cfg: provider.Values{"destination": "10.2.0.0/16", "link": "v0", "metric": int64(50)}, family: "-4", ipDst: "10.2.0.0/16",
			want: provider.Values{"destination": "10.2.0.0/16", "gateway": nil, "link": "v0", "metric": int64(50)},
		},
		{
			cfg: provider.Values{"destination": "default", "gateway": "10.0.0.254", "link": "v0"}, family: "-4", ipDst: "default",
			want: provider.Values{"destination": "default", "gateway": "10.0.0.254", "link": "v0", "metric": int64(0)},
		},
		{
			cfg: provider.Values{"destination": "fd01::/64", "gateway": "fd00::fe"}, family: "-6", ipDst: "fd01::/64",
			want: provider.Values{"destination": "fd01::/64", "gateway": "fd00::fe", "link": "v0", "metric": int64(1024)},
		},
		{
			cfg: provider.Values{"destination": "::/0", "gateway": "fd00::fe"}, family: "-6", ipDst: "default",
			want: provider.Values{"destination": "::/0", "gateway": "fd00::fe", "link": "v0", "metric": int64(1024)},
		},
	}
	for _, c := range cases {
		t.Run(c.family+" "+c.ipDst, func(t *testing.T) {
			cfg := c.cfg.Clone()
			cfg["namespace"] = ns
			want := c.want.Clone()
			want["namespace"] = ns
			id, created := create(t, s, routes, cfg)
			if id != ns+"/"+c.cfg.String("destination") {
				t.Errorf("id %q", id)
			}
			sameValues(t, "create", created, want)
			r := ipRoute(t, ns, c.family, c.ipDst)
			if r == nil {
				t.Fatalf("ip %s route shows no %s", c.family, c.ipDst)
			}
			if r["dev"] != "v0" || c.cfg.Has("gateway") && r["gateway"] != c.cfg.String("gateway") {
				t.Errorf("ip shows %v", r)
			}
			got, found := read(t, routes, id)
			if !found {
				t.Fatal("read: not found")
			}
			sameValues(t, "read after create", got, created)
			noDiff(t, routes, cfg, got)
		})
	}
	for _, c := range cases {
		id := ns + "/" + c.cfg.String("destination")
		v, found := read(t, routes, id)
		if !found {
			continue
		}
		if err := routes.Delete(context.Background(), s, id, v); err != nil {
			t.Fatal(err)
		}
		if r := ipRoute(t, ns, c.family, c.ipDst); r != nil {
			t.Errorf("ip still shows %v after delete", r)
		}
		if err := routes.Delete(context.Background(), s, id, v); err != nil {
			t.Errorf("delete of a route already gone: %v", err)
		}
	}
	if _, found := read(t, routes, ns+"/10.1.0.0/16"); found {
		t.Error("read after delete: found")
	}
}

func TestRouteValidate(t *testing.T) {
	cases := []struct {
		v    provider.Values
		want string
	}{
		{provider.Values{"destination": "10.1.0.0/16", "gateway": "10.0.0.1"}, ""},
		{provider.Values{"destination": "default", "link": "eth0"}, ""},
		{provider.Values{"destination": "fd01::/64", "gateway": "fd00::1", "metric": int64(1024)}, ""},
		{provider.Values{"destination": "10.1.0.0/16"}, "a route needs a gateway, a link or both"},
		{provider.Values{"destination": "10.1.0.5/16", "link": "eth0"}, "write the network, 10.1.0.0/16"},
		{provider.Values{"destination": "10.1.0.0/16", "gateway": "fd00::1"}, "different IP families"},
		{provider.Values{"destination": "fd01::/64", "gateway": "fd00:0::1"}, "write it as fd00::1"},
		{provider.Values{"destination": "fd01::/64", "link": "eth0", "metric": int64(0)}, "leave metric out or set 1024"},
		{provider.Values{"destination": "somewhere", "link": "eth0"}, "want default, ::/0 or a network"},
		{provider.Values{"destination": "0.0.0.0/0", "link": "eth0"}, "write the IPv4 default route as default"},
		{provider.Values{"destination": "default", "gateway": "fd00::1"}, "the IPv6 default route is ::/0"},
		{provider.Values{"destination": "::/0", "gateway": "fd00::1"}, ""},
	}
	for _, c := range cases {
		known := map[string]bool{}
		for k := range c.v {
			known[k] = true
		}
		err := routes.Validate(c.v, known)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("validate %v: %v, want %q", c.v, err, c.want)
		}
	}
	// A gateway not known until apply counts as set.
	if err := routes.Validate(provider.Values{"destination": "default"}, map[string]bool{"destination": true, "gateway": true}); err != nil {
		t.Errorf("an unknown gateway: %v", err)
	}
}
