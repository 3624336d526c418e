package deploy

import (
	"strings"
	"testing"
)

const allocCloud = `
networks:
- name: default
  type: manual
  subnets:
  - range: 10.244.0.0/24
    gateway: 10.244.0.1
    reserved: [10.244.0.2 - 10.244.0.9]
    static: [10.244.0.10 - 10.244.0.19]
- name: dyn
  type: dynamic
`

func allocPlan(t *testing.T, groups string) *plan {
	t.Helper()
	c, err := parseCloudConfig("cloud.yml", []byte(allocCloud))
	if err != nil {
		t.Fatal(err)
	}
	man, err := parseManifest("m.yml", []byte("name: d\ninstance_groups:\n"+groups))
	if err != nil {
		t.Fatal(err)
	}
	return &plan{man: man, cloud: c}
}

func instancesOf(p *plan) []*Instance {
	var out []*Instance
	for _, g := range p.man.InstanceGroups {
		for i := range g.Instances {
			out = append(out, &Instance{Group: g.Name, Index: i})
		}
	}
	return out
}

// TestAllocate: BOSH's address rules on a manual network — static_ips in
// index order from the static ranges; dynamic addresses the lowest not
// the gateway's, reserved, static or another deployment's; an address an
// instance holds kept; a deployment that does not fit refused.
func TestAllocate(t *testing.T) {
	p := allocPlan(t, `
- {name: db, instances: 2, jobs: [{name: j, release: r}], networks: [{name: default, static_ips: [10.244.0.11, 10.244.0.10]}]}
- {name: web, instances: 3, jobs: [{name: j, release: r}], networks: [{name: default}]}
- {name: tmp, instances: 1, jobs: [{name: j, release: r}], networks: [{name: dyn}]}
`)
	want := instancesOf(p)
	want[3].IP = "10.244.0.40" // web/1 had this one: it keeps it
	others := []*Instance{{Group: "x", Index: 0, IP: "10.244.0.20"}}
	a, err := p.allocate(want, others)
	if err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]string{
		"db/0": "10.244.0.11", "db/1": "10.244.0.10",
		"web/0": "10.244.0.21", "web/1": "10.244.0.40", "web/2": "10.244.0.22",
		"tmp/0": "",
	} {
		if a.ip[name] != ip {
			t.Errorf("%s: %q, want %q", name, a.ip[name], ip)
		}
	}
	if a.net["tmp"] != nil || a.net["web"].runtimeNetwork() != "bosh-default" {
		t.Errorf("networks: %+v", a.net)
	}

	for groups, wantErr := range map[string]string{
		`- {name: db, instances: 3, jobs: [{name: j, release: r}], networks: [{name: default, static_ips: [10.244.0.10 - 10.244.0.11]}]}`: "3 instances but 2 static_ips",
		`- {name: db, instances: 1, jobs: [{name: j, release: r}], networks: [{name: default, static_ips: [10.244.0.30]}]}`:               "not in network default's static ranges",
		`- {name: db, instances: 1, jobs: [{name: j, release: r}], networks: [{name: default, static_ips: [10.244.0.20]}]}`:               "not in network default's static ranges",
		`- {name: db, instances: 1, jobs: [{name: j, release: r}], networks: [{name: dyn, static_ips: [10.244.0.12]}]}`:                   "static_ips need a manual network",
		`- {name: web, instances: 236, jobs: [{name: j, release: r}], networks: [{name: default}]}`:                                       "no free address",
	} {
		p := allocPlan(t, groups)
		if _, err := p.allocate(instancesOf(p), others); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: %v, want an error with %q", groups, err, wantErr)
		}
	}
	// 254 hosts less the gateway, 8 reserved, 10 static and 1 other's: 234 fit.
	p = allocPlan(t, `- {name: web, instances: 234, jobs: [{name: j, release: r}], networks: [{name: default}]}`)
	if a, err := p.allocate(instancesOf(p), others); err != nil {
		t.Errorf("234 instances: %v", err)
	} else if a.ip["web/233"] != "10.244.0.254" {
		t.Errorf("234 instances: the last has %q, want 10.244.0.254", a.ip["web/233"])
	}
	p = allocPlan(t, `- {name: web, instances: 235, jobs: [{name: j, release: r}], networks: [{name: default}]}`)
	if _, err := p.allocate(instancesOf(p), others); err == nil {
		t.Error("235 instances fit in 234 addresses")
	}
}
