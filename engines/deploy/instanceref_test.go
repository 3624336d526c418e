package deploy

import (
	"strings"
	"testing"
)

// TestInstanceContainer: GROUP/INDEX, GROUP/UUID, a UUID prefix (also one
// of digits only, which once read as an index and named nothing), and
// DEPLOYMENT/GROUP/INDEX.
func TestInstanceContainer(t *testing.T) {
	m := &module{st: &state{Deployments: map[string]*Deployment{
		"redis": {Name: "redis", Instances: []*Instance{
			{Group: "master", Index: 0, ID: "28736757-aaaa-4bbb-8ccc-000000000001", Container: "c-master-0"},
			{Group: "slave", Index: 0, ID: "9f0e1d2c-aaaa-4bbb-8ccc-000000000002", Container: "c-slave-0"},
			{Group: "slave", Index: 1, ID: "1000abcd-aaaa-4bbb-8ccc-000000000003", Container: "c-slave-1"},
		}},
		"web": {Name: "web", Instances: []*Instance{
			{Group: "slave", Index: 0, ID: "77777777-aaaa-4bbb-8ccc-000000000004", Container: "c-web-slave-0"},
		}},
	}}}
	n := instanceNames{m}
	for ref, want := range map[string]string{
		"master/0":        "c-master-0",
		"master/28736757": "c-master-0", // digits only: no index 28736757, so the id prefix
		"master/28736757-aaaa-4bbb-8ccc-000000000001": "c-master-0",
		"slave/9f0e":         "c-slave-0",
		"slave/1000":         "c-slave-1", // an id prefix, no index 1000
		"redis/slave/1":      "c-slave-1",
		"web/slave/0":        "c-web-slave-0",
		"web/slave/77777777": "c-web-slave-0",
	} {
		got, err := n.InstanceContainer(ref)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", ref, got, err, want)
		}
	}
	for ref, wantErr := range map[string]string{
		"slave/0":   "names instances of 2 deployments",
		"master/7":  "no instance master/7",
		"master/28": "no instance master/28", // too short for an id prefix
		"master":    "an instance is GROUP/INDEX",
	} {
		if _, err := n.InstanceContainer(ref); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: %v, want an error saying %q", ref, err, wantErr)
		}
	}
}
