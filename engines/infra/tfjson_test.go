package infra

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
)

// The documented shape of a resource change in Terraform's JSON plan
// format (developer.hashicorp.com/terraform/internals/json-format,
// "Change Representation" and "resource_changes"): these fields and no
// others.
type docResourceChange struct {
	Address         string    `json:"address"`
	PreviousAddress string    `json:"previous_address"`
	ModuleAddress   string    `json:"module_address"`
	Mode            string    `json:"mode"`
	Type            string    `json:"type"`
	Name            string    `json:"name"`
	Index           any       `json:"index"`
	Deposed         string    `json:"deposed"`
	ProviderName    string    `json:"provider_name"`
	Change          docChange `json:"change"`
	ActionReason    string    `json:"action_reason"`
}

type docChange struct {
	Actions         []string        `json:"actions"`
	Before          json.RawMessage `json:"before"`
	After           json.RawMessage `json:"after"`
	AfterUnknown    json.RawMessage `json:"after_unknown"`
	BeforeSensitive json.RawMessage `json:"before_sensitive"`
	AfterSensitive  json.RawMessage `json:"after_sensitive"`
	ReplacePaths    json.RawMessage `json:"replace_paths"`
	Importing       *struct {
		ID string `json:"id"`
	} `json:"importing"`
	GeneratedConfig string `json:"generated_config"`
}

type docPlan struct {
	FormatVersion   string               `json:"format_version"`
	ResourceChanges []docResourceChange  `json:"resource_changes"`
	OutputChanges   map[string]docChange `json:"output_changes"`
}

// lastOutputs are the output_changes decodeDocPlan last decoded.
var lastOutputs map[string]docChange

// The action lists the format documents.
var docActions = [][]string{{"no-op"}, {"create"}, {"read"}, {"update"}, {"delete", "create"}, {"create", "delete"}, {"delete"}}

func decodeDocPlan(t *testing.T, row json.RawMessage) map[string]docResourceChange {
	t.Helper()
	var all map[string]json.RawMessage
	if err := json.Unmarshal(row, &all); err != nil {
		t.Fatal(err)
	}
	tf, _ := json.Marshal(map[string]json.RawMessage{"format_version": all["format_version"], "resource_changes": all["resource_changes"], "output_changes": all["output_changes"]})
	d := json.NewDecoder(bytes.NewReader(tf))
	d.DisallowUnknownFields() // a field the format does not document fails
	var p docPlan
	if err := d.Decode(&p); err != nil {
		t.Fatalf("resource_changes do not decode as the documented format: %v\n%s", err, tf)
	}
	if p.FormatVersion == "" || p.FormatVersion[:2] != "1." {
		t.Fatalf("format_version %q", p.FormatVersion)
	}
	for name, oc := range p.OutputChanges {
		if !slices.ContainsFunc(docActions, func(a []string) bool { return slices.Equal(a, oc.Actions) }) {
			t.Fatalf("output %s: actions %v are not the format's", name, oc.Actions)
		}
	}
	lastOutputs = p.OutputChanges
	out := map[string]docResourceChange{}
	for _, rc := range p.ResourceChanges {
		if rc.Address == "" || rc.Type == "" || rc.Name == "" || rc.ProviderName == "" || (rc.Mode != "managed" && rc.Mode != "data") {
			t.Fatalf("incomplete resource change %+v", rc)
		}
		if !slices.ContainsFunc(docActions, func(a []string) bool { return slices.Equal(a, rc.Change.Actions) }) {
			t.Fatalf("%s: actions %v are not the format's", rc.Address, rc.Change.Actions)
		}
		isNull := func(m json.RawMessage) bool { return string(m) == "null" }
		isObj := func(m json.RawMessage) bool { return len(m) > 0 && m[0] == '{' }
		isObjOrBool := func(m json.RawMessage) bool { return isObj(m) || string(m) == "false" || string(m) == "true" }
		switch {
		case slices.Equal(rc.Change.Actions, []string{"create"}):
			if !isNull(rc.Change.Before) || !isObj(rc.Change.After) {
				t.Fatalf("%s: a create has before null and after an object: %s %s", rc.Address, rc.Change.Before, rc.Change.After)
			}
		case slices.Equal(rc.Change.Actions, []string{"delete"}):
			if !isObj(rc.Change.Before) || !isNull(rc.Change.After) {
				t.Fatalf("%s: a delete has before an object and after null", rc.Address)
			}
		default:
			if !isObj(rc.Change.Before) || !isObj(rc.Change.After) {
				t.Fatalf("%s: before and after are objects", rc.Address)
			}
		}
		for _, m := range []json.RawMessage{rc.Change.AfterUnknown, rc.Change.BeforeSensitive, rc.Change.AfterSensitive} {
			if !isObjOrBool(m) {
				t.Fatalf("%s: after_unknown, before_sensitive and after_sensitive are objects or booleans: %s", rc.Address, m)
			}
		}
		out[rc.Address] = rc
	}
	return out
}

// infra plan's row carries resource_changes in the shape of terraform
// show -json's, checked against the documented format: addresses with
// module paths and indexes, provider names, actions, before/after,
// after_unknown and the sensitive maps.
func TestPlanJSONResourceChanges(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(root, "tfjson")
	writeConfig(t, filepath.Join(cfg, "m"), map[string]string{"main.tf": `
variable "n" {}
resource "local_file" "f" {
  filename = "${path.module}/${var.n}.txt"
  content  = var.n
}`})
	conf := func(content string, keys string) map[string]string {
		return map[string]string{"main.tf": `
resource "random_password" "p" {
  length = 12
}
resource "file" "plain" {
  path    = "` + root + `/plain"
  content = "` + content + `"
}
module "m" {
  source   = "./m"
  for_each = toset([` + keys + `])
  n        = each.key
}
output "plain" {
  value = file.plain.content
}
output "pw" {
  value     = random_password.p.result
  sensitive = true
}
`}
	}
	writeConfig(t, cfg, conf("one", `"a", "b"`))
	rcs := decodeDocPlan(t, e.ok("infra plan " + cfg).rows[0])
	p := rcs["random_password.p"]
	if p.ProviderName != "registry.terraform.io/hashicorp/random" || p.Index != nil || p.ModuleAddress != "" {
		t.Fatalf("random_password.p: %+v", p)
	}
	if string(p.Change.AfterSensitive) != `{"result":true}` || string(p.Change.AfterUnknown) != `{"id":true,"result":true}` || string(p.Change.BeforeSensitive) != "false" {
		t.Fatalf("random_password.p change: %s %s %s", p.Change.AfterSensitive, p.Change.AfterUnknown, p.Change.BeforeSensitive)
	}
	m := rcs[`module.m["a"].local_file.f`]
	if m.ModuleAddress != `module.m["a"]` || m.Name != "f" || m.Type != "local_file" || m.ProviderName != "registry.terraform.io/hashicorp/local" {
		t.Fatalf("module instance: %+v", m)
	}
	var after map[string]any
	json.Unmarshal(m.Change.After, &after)
	if after["content"] != "a" || after["id"] != "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8" {
		t.Fatalf("after %v", after)
	}
	if o := lastOutputs["plain"]; !slices.Equal(o.Actions, []string{"create"}) || string(o.Before) != "null" || string(o.After) != `"one"` {
		t.Fatalf("output_changes plain: %+v %s %s", o, o.Before, o.After)
	}
	if o := lastOutputs["pw"]; string(o.AfterSensitive) != "true" || string(o.AfterUnknown) != "true" || string(o.After) != "null" {
		t.Fatalf("output_changes pw: %s %s %s", o.AfterSensitive, o.AfterUnknown, o.After)
	}
	e.ok("infra apply " + cfg + " auto-approve")

	// update, delete, no-op, and an index.
	writeConfig(t, cfg, conf("two", `"a"`))
	rcs = decodeDocPlan(t, e.ok("infra plan " + cfg).rows[0])
	for addr, want := range map[string][]string{
		"file.plain":                 {"update"},
		`module.m["b"].local_file.f`: {"delete"},
		`module.m["a"].local_file.f`: {"no-op"},
		"random_password.p":          {"no-op"},
	} {
		if got := rcs[addr].Change.Actions; !slices.Equal(got, want) {
			t.Errorf("%s: actions %v, want %v", addr, got, want)
		}
	}
	if o := lastOutputs["plain"]; !slices.Equal(o.Actions, []string{"update"}) || string(o.Before) != `"one"` || string(o.After) != `"two"` {
		t.Fatalf("output_changes plain after the edit: %+v", o)
	}
	if rcs[`module.m["b"].local_file.f`].ActionReason != "delete_because_no_resource_config" {
		t.Errorf("delete reason %q", rcs[`module.m["b"].local_file.f`].ActionReason)
	}
	var before, upd map[string]any
	json.Unmarshal(rcs["file.plain"].Change.Before, &before)
	json.Unmarshal(rcs["file.plain"].Change.After, &upd)
	if before["content"] != "one" || upd["content"] != "two" || before["id"] != root+"/plain" {
		t.Fatalf("update before %v after %v", before, upd)
	}
	if string(rcs["random_password.p"].Change.Before) == "" || bytes.Contains(rcs["random_password.p"].Change.Before, []byte(`"result":"`)) {
		t.Fatalf("the password is in the plan: %s", rcs["random_password.p"].Change.Before)
	}
	// -replace gives delete-then-create with the format's reason.
	rcs = decodeDocPlan(t, e.ok("infra plan " + cfg + " replace=random_password.p").rows[0])
	if got := rcs["random_password.p"]; !slices.Equal(got.Change.Actions, []string{"delete", "create"}) || got.ActionReason != "replace_by_request" {
		t.Fatalf("replace: %+v", got)
	}
}
