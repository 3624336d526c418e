package deploy

import "testing"

// FuzzManifest: any bytes as a manifest (v1 or v2) or a cloud config are
// read or refused with an error, never a panic, and an error says the
// file's name.
func FuzzManifest(f *testing.F) {
	for _, s := range []string{
		"name: x\ninstance_groups:\n- name: a\n  instances: 1\n  jobs: [{name: j, release: r}]\n  networks: [{name: default, static_ips: [10.0.0.5]}]\n",
		"name: x\njobs:\n- name: a\n  instances: 1\n  templates: [{name: j, release: r}]\nnetworks:\n- name: default\n  subnets: [{range: 10.0.0.0/24, static: [10.0.0.2 - 10.0.0.9]}]\n",
		"name: x\ninstance_groups:\n  - name: a\n   instances: 1\n", "((x))", "name: [", "networks:\n- name: n\n  type: manual\n  subnets: [{range: 10.0.0.0/24, gateway: 10.0.0.1, reserved: [10.0.0.2 - 10.0.0.3]}]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if _, err := parseManifest("m.yml", []byte(src)); err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
		if err := checkShape("m.yml", []byte(src)); err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
		c, err := parseCloudConfig("cloud.yml", []byte(src))
		if err == nil {
			for _, n := range c.Networks {
				_, _ = c.manualNetwork(n.Name)
			}
		}
	})
}
