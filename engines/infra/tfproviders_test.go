package infra

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/config"
)

// stateAttrs answers the attributes infra state show answers for addr.
func (e *env) stateAttrs(ws, addr string) map[string]any {
	e.t.Helper()
	var row stateRow
	if err := json.Unmarshal(e.ok("infra state show '" + addr + "' workspace=" + ws).rows[0], &row); err != nil {
		e.t.Fatal(err)
	}
	return row.Attrs
}

// The examples of the hashicorp/local, null, random and time providers'
// documentation, retyped: plan, apply, an empty second plan, keepers
// and triggers that replace, destroy.
func TestTerraformProvidersFromTheirDocs(t *testing.T) {
	e := newEnv(t)
	root := publicDir(t)
	cfg := filepath.Join(publicDir(t), "docs")
	conf := func(keeper string) map[string]string {
		return map[string]string{"main.tf": `
terraform {
  required_providers {
    local  = { source = "hashicorp/local" }
    null   = { source = "hashicorp/null" }
    random = { source = "hashicorp/random", version = "~> 3.0" }
    time   = { source = "hashicorp/time" }
  }
}

resource "random_password" "password" {
  length           = 16
  special          = true
  override_special = "!#$%&*()-_=+[]{}<>:?"
  keepers = {
    rotate = "` + keeper + `"
  }
}

resource "random_id" "server" {
  keepers = {
    ami_id = "` + keeper + `"
  }
  byte_length = 8
}

resource "random_integer" "priority" {
  min = 1
  max = 50000
  keepers = {
    listener_arn = "` + keeper + `"
  }
}

resource "random_string" "random" {
  length           = 16
  special          = true
  override_special = "/@£$"
}

resource "random_uuid" "test" {}

resource "random_pet" "server" {
  keepers = {
    ami_id = "` + keeper + `"
  }
}

resource "random_shuffle" "az" {
  input        = ["us-west-1a", "us-west-1c", "us-west-1d", "us-west-1e"]
  result_count = 2
}

resource "local_file" "foo" {
  content  = "foo!"
  filename = "${path.module}/out/foo.bar"
}

resource "local_sensitive_file" "secret" {
  content  = random_password.password.result
  filename = "` + root + `/secret.txt"
}

data "local_file" "foo" {
  filename = local_file.foo.filename
}

resource "null_resource" "cluster" {
  triggers = {
    cluster_instance_ids = join(",", [random_id.server.hex, random_pet.server.id])
  }
}

resource "terraform_data" "replacement" {
  input            = random_integer.priority.result
  triggers_replace = [random_id.server.hex]
}

resource "time_static" "example" {}

resource "time_rotating" "example" {
  rotation_days = 30
}

output "server" {
  value = "web-${random_id.server.hex}"
}
output "foo" {
  value = data.local_file.foo.content
}
output "priority" {
  value = terraform_data.replacement.output
}
`}
	}
	writeConfig(t, cfg, conf("a"))
	plan := e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan, "# random_password.password will be created", "+ result           = (sensitive value)",
		"# data.local_file.foo will be read during apply", "Plan: 13 to add, 0 to change, 0 to destroy.")
	e.ok("infra apply " + cfg + " auto-approve")
	if got := readFile(t, filepath.Join(cfg, "out", "foo.bar")); got != "foo!" {
		t.Fatalf("foo.bar = %q", got)
	}
	secret := readFile(t, filepath.Join(root, "secret.txt"))
	if len(secret) != 16 {
		t.Fatalf("password %q", secret)
	}
	if st, _ := os.Stat(filepath.Join(root, "secret.txt")); st.Mode().Perm() != 0o700 {
		t.Fatalf("local_sensitive_file mode %v", st.Mode())
	}
	if strings.Contains(e.journaled(), secret) {
		t.Fatal("the password is in the journal")
	}
	e.noChanges("infra plan " + cfg)
	// The password is derived again after a restart: still no changes.
	e.close()
	e.open()
	e.noChanges("infra plan " + cfg)

	outs := map[string]any{}
	for _, r := range e.ok("infra output workspace=docs").rows {
		var o struct {
			Name  string
			Value any
		}
		json.Unmarshal(r, &o)
		outs[o.Name] = o.Value
	}
	hex := e.stateAttrs("docs", "random_id.server")["hex"].(string)
	if outs["server"] != "web-"+hex || outs["foo"] != "foo!" || len(hex) != 16 {
		t.Fatalf("outputs %v, hex %s", outs, hex)
	}
	pri, _ := e.stateAttrs("docs", "random_integer.priority")["result"].(float64)
	if pri < 1 || pri > 50000 || outs["priority"] != pri {
		t.Fatalf("priority %v, output %v (%T)", pri, outs["priority"], outs["priority"])
	}
	if r := e.stateAttrs("docs", "random_shuffle.az")["result"].([]any); len(r) != 2 {
		t.Fatalf("shuffle %v", r)
	}

	// A keeper change makes new values, and what depends on them follows.
	writeConfig(t, cfg, conf("b"))
	plan = e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan, "# random_password.password must be replaced", "# null_resource.cluster must be replaced",
		"# terraform_data.replacement must be replaced", "# local_sensitive_file.secret must be replaced")
	e.ok("infra apply " + cfg + " auto-approve")
	if s := readFile(t, filepath.Join(root, "secret.txt")); s == secret || len(s) != 16 {
		t.Fatalf("the password did not change: %q", s)
	}
	if e.stateAttrs("docs", "random_id.server")["hex"] == hex {
		t.Fatal("random_id kept its value through a keeper change")
	}
	e.noChanges("infra plan " + cfg)

	// A local_file changed by hand is made again.
	os.WriteFile(filepath.Join(cfg, "out", "foo.bar"), []byte("tampered"), 0o644)
	mustContain(t, "plan", e.ok("infra plan "+cfg).text, "# local_file.foo will be created")
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)

	e.ok("infra destroy " + cfg + " auto-approve")
	if _, err := os.Stat(filepath.Join(root, "secret.txt")); !os.IsNotExist(err) {
		t.Fatalf("secret.txt after destroy: %v", err)
	}
}

// A provider cairn lacks is named in the error; so are attributes a
// schema does not have.
func TestTerraformProviderErrors(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(t.TempDir(), "errs")
	for _, tc := range []struct{ src, want string }{
		{`terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}`, "required_providers.aws asks for hashicorp/aws, which cairn does not have"},
		{`terraform {
  required_version = ">= 2.0"
}`, "Unsupported Terraform Core version"},
		{`resource "random_password" "p" {
  length      = 8
  min_numeric = 9
}`, "length (8) must be >= (min_upper + min_lower + min_numeric + min_special) (9)"},
		{`resource "random_password" "p" {
  length      = 8
  bcrypt_cost = 10
}`, `Unsupported argument; An argument named "bcrypt_cost" is not expected here.`},
		{`variable "v" {
  nullable = false
}
resource "null_resource" "n" {
  triggers = { v = var.v }
}`, `No value for required variable`},
		{`resource "consul_node" "n" {
  name    = "foobar"
  address = "192.168.10.10"
}`, `cairn does not offer the resource type "consul_node": hashicorp/consul's consul_node registers an external node in the catalog`},
		{`data "terraform_remote_state" "vpc" {
  backend = "local"
}`, `read another workspace's outputs with infra output workspace=NAME`},
		{`resource "local_file" "f" {
  filename = "/tmp/x"
}`, "exactly one of `content,content_base64,sensitive_content,source` must be specified"},
		{`resource "null_resource" "n" {
  provisioner "local-exec" {
    command = "echo hi"
  }
}`, "cairn has no provisioner blocks"},
	} {
		writeConfig(t, cfg, map[string]string{"main.tf": tc.src})
		a := e.run("infra plan " + cfg)
		if a.err == nil || !strings.Contains(a.err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", tc.src, a.err, tc.want)
		}
	}
}

// lifecycle.replace_triggered_by replaces a resource when what it names
// changes, and only then.
func TestReplaceTriggeredBy(t *testing.T) {
	e := newEnv(t)
	cfg := filepath.Join(publicDir(t), "rtb")
	conf := func(v string) map[string]string {
		return map[string]string{"main.tf": `
resource "terraform_data" "version" {
  input = "` + v + `"
}
resource "null_resource" "deploy" {
  count = 2
  lifecycle {
    replace_triggered_by = [terraform_data.version]
  }
}
resource "random_id" "other" {
  byte_length = 4
}`}
	}
	writeConfig(t, cfg, conf("1"))
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)
	writeConfig(t, cfg, conf("2"))
	plan := e.ok("infra plan " + cfg).text
	mustContain(t, "plan", plan, "# null_resource.deploy[0] must be replaced", "# (because replace_triggered_by: terraform_data.version changes)",
		"# null_resource.deploy[1] must be replaced", "Plan: 2 to add, 1 to change, 2 to destroy.")
	if strings.Contains(plan, "random_id.other must be replaced") {
		t.Fatal("an untriggered resource is replaced")
	}
	e.ok("infra apply " + cfg + " auto-approve")
	e.noChanges("infra plan " + cfg)
}

// A dynamic block with iterator, and static blocks beside it: the
// blocks are expanded in plan and apply (docker_container's volumes are
// only planned here, nothing is run).
func TestDynamicBlockIterator(t *testing.T) {
	cfg, diags := config.Parse("/cfg", map[string]string{"main.tf": `
variable "mounts" {
  default = { "/srv/a" = "/a", "/srv/b" = "/b" }
}
resource "docker_container" "c" {
  name  = "c"
  image = "busybox"
  dynamic "volumes" {
    for_each = var.mounts
    iterator = m
    content {
      host_path      = m.key
      container_path = m.value
      read_only      = m.key == "/srv/b"
    }
  }
  volumes {
    host_path      = "/srv/c"
    container_path = "/c"
  }
}`})
	if diags.HasErrors() {
		t.Fatal(config.Format(diags))
	}
	vars, diags := cfg.VariableValues(config.Inputs{})
	if diags.HasErrors() {
		t.Fatal(config.Format(diags))
	}
	p, err := plan(cfg, vars, nil, Reality{}, planOptions{Workspace: "w", Dir: "/cfg"})
	if err != nil {
		t.Fatal(err)
	}
	var vols any
	for _, ac := range p.Changes[0].Attrs {
		if ac.Name == "volumes" {
			vols = ac.After
		}
	}
	got := display(vols)
	want := `[{"container_path":"/a","host_path":"/srv/a","read_only":false},{"container_path":"/b","host_path":"/srv/b","read_only":true},{"container_path":"/c","host_path":"/srv/c","read_only":false}]`
	if got != want {
		t.Fatalf("volumes:\n got %s\nwant %s", got, want)
	}
	// A block type the schema does not have is refused by name, dynamic or not.
	cfg, _ = config.Parse("/cfg", map[string]string{"main.tf": `
resource "docker_container" "c" {
  name  = "c"
  image = "busybox"
  dynamic "healthcheck" {
    for_each = [1]
    content {
      test = ["CMD", "true"]
    }
  }
}`})
	if _, err := plan(cfg, nil, nil, Reality{}, planOptions{Workspace: "w", Dir: "/cfg"}); err == nil || !strings.Contains(err.Error(), `healthcheck`) {
		t.Fatalf("dynamic healthcheck: %v", err)
	}
}
