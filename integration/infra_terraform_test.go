package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// cliEnvIn runs the CLI in dir with extra environment variables.
func cliEnvIn(t *testing.T, d *daemonProc, dir string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := cliCommand(ctx, d, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return runCLI(t, cmd)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tfRoot is a configuration in Terraform's own syntax, the providers'
// documentation examples retyped: a root module calling a local module
// twice with for_each, a dynamic block, local_file + random_password +
// null_resource with triggers, consul_keys and consul_service.
var tfRoot = map[string]string{
	"versions.tf": `
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    local  = { source = "hashicorp/local", version = "~> 2.4" }
    null   = { source = "hashicorp/null", version = "~> 3.2" }
    random = { source = "hashicorp/random", version = "~> 3.6" }
    consul = { source = "hashicorp/consul", version = "~> 2.20" }
  }
}

provider "consul" {
  address    = "127.0.0.1:8500"
  datacenter = "dc1"
}
`,
	"main.tf": `
variable "app" {
  type = string
}

variable "settings" {
  type = map(string)
}

variable "sites" {
  type = map(object({ port = number }))
}

resource "random_password" "db" {
  length           = 20
  special          = true
  override_special = "!#$%&*()-_=+[]{}<>:?"
}

resource "local_sensitive_file" "db_password" {
  content  = random_password.db.result
  filename = "${path.module}/out/db_password"
}

module "site" {
  source   = "./modules/site"
  for_each = var.sites

  name = each.key
  port = each.value.port
  dir  = "${path.module}/out"
}

resource "null_resource" "cluster" {
  triggers = {
    site_files = join(",", [for s in module.site : s.file])
  }
}

resource "consul_keys" "app" {
  datacenter = "dc1"

  dynamic "key" {
    for_each = var.settings
    content {
      path   = "${var.app}/config/${key.key}"
      value  = key.value
      delete = true
    }
  }

  key {
    path   = "${var.app}/sites"
    value  = jsonencode({ for k, s in module.site : k => s.port })
    delete = true
  }
}

resource "consul_key_prefix" "myapp_config" {
  datacenter  = "dc1"
  path_prefix = "${var.app}/prefix/"

  subkeys = {
    "elb_cname"         = "shop.example.com"
    "s3_bucket_name"    = "shop-assets"
    "database/hostname" = "db.internal"
  }

  subkey {
    path  = "database/password"
    value = "not-a-secret-here"
    flags = 2
  }
}

variable "consul_http" {
  type = string
}

resource "consul_service" "app" {
  name    = var.app
  node    = "cairn"
  address = "127.0.0.1"
  port    = 8080
  tags    = ["tf"]

  check {
    check_id = "service:${var.app}"
    name     = "${var.app} health check"
    http     = "http://${var.consul_http}/v1/status/leader"
    interval = "5s"
    timeout  = "1s"
  }
}

output "site_files" {
  value = { for k, s in module.site : k => s.file }
}

data "consul_keys" "read" {
  key {
    name    = "workers"
    path    = "${var.app}/config/workers"
    default = "1"
  }
  key {
    name    = "missing"
    path    = "${var.app}/config/nope"
    default = "fallback"
  }
  depends_on = [consul_keys.app]
}

output "workers" {
  value = data.consul_keys.read.var
}
`,
	"terraform.tfvars": `
app = "shop"
sites = {
  blue  = { port = 8081 }
  green = { port = 8082 }
}
`,
	"modules/site/main.tf": `
variable "name" {
  type = string
}

variable "port" {
  type = number
  validation {
    condition     = var.port > 1024
    error_message = "The port must be above 1024."
  }
}

variable "dir" {
  type = string
}

resource "local_file" "conf" {
  filename        = "${var.dir}/${var.name}.conf"
  content         = templatefile("${path.module}/site.conf.tftpl", { name = var.name, port = var.port })
  file_permission = "0644"
}

output "file" {
  value = local_file.conf.filename
}

output "port" {
  value = var.port
}
`,
	"modules/site/site.conf.tftpl": "server ${name} listens on ${port}\n",
}

// TestInfraTerraformConfiguration runs a configuration written in
// Terraform's own syntax through the real binary: plan, apply, what the
// providers made (files, consul/api reading keys and the service back), a
// second plan with no changes, a TF_VAR_ change, destroy.
func TestInfraTerraformConfiguration(t *testing.T) {
	d, c := consulDaemon(t)
	dir := filepath.Join(t.TempDir(), "shop")
	writeFiles(t, dir, tfRoot)
	httpEnv := "TF_VAR_consul_http=" + d.Status.HTTP
	env := []string{`TF_VAR_settings={"log_level":"info","workers":"4"}`, httpEnv}
	run := func(args ...string) string {
		t.Helper()
		r := cliEnvIn(t, d, dir, env, args...)
		if r.Code != 0 {
			t.Fatalf("cairn %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}

	plan := run("infra", "plan", ".")
	for _, want := range []string{
		`# module.site["blue"].local_file.conf will be created`,
		`# module.site["green"].local_file.conf will be created`,
		"# random_password.db will be created",
		"# null_resource.cluster will be created",
		"# consul_keys.app will be created",
		"Plan: 8 to add, 0 to change, 0 to destroy.",
	} {
		if !strings.Contains(plan, want) {
			t.Fatalf("plan lacks %q:\n%s", want, plan)
		}
	}
	out := run("infra", "apply", ".", "auto-approve")
	if !strings.Contains(out, "Apply complete! Resources: 8 added, 0 changed, 0 destroyed.") {
		t.Fatalf("apply:\n%s", out)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "out", "green.conf"))
	if err != nil || string(conf) != "server green listens on 8082\n" {
		t.Fatalf("green.conf: %q %v", conf, err)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "out", "db_password"))
	if err != nil || len(pw) != 20 {
		t.Fatalf("db_password: %q %v", pw, err)
	}

	kv := c.KV()
	for key, want := range map[string]string{
		"shop/config/log_level": "info",
		"shop/config/workers":   "4",
		"shop/sites":            `{"blue":8081,"green":8082}`,
	} {
		p, _, err := kv.Get(key, nil)
		if err != nil || p == nil || string(p.Value) != want {
			t.Fatalf("consul kv %s: %+v %v, want %q", key, p, err, want)
		}
	}
	if ps, _, err := kv.List("shop/prefix/", nil); err != nil || len(ps) != 4 {
		t.Fatalf("consul_key_prefix keys: %v %v", ps, err)
	}
	if p, _, err := kv.Get("shop/prefix/database/password", nil); err != nil || p == nil || p.Flags != 2 || string(p.Value) != "not-a-secret-here" {
		t.Fatalf("subkey block: %+v %v", p, err)
	}
	svcs, _, err := c.Catalog().Service("shop", "", nil)
	if err != nil || len(svcs) != 1 || svcs[0].ServicePort != 8080 || svcs[0].ServiceAddress != "127.0.0.1" {
		t.Fatalf("catalog service shop: %+v %v", svcs, err)
	}
	checks, _, err := c.Health().Checks("shop", nil)
	if err != nil || len(checks) != 1 || checks[0].ServiceID != "shop" {
		t.Fatalf("the service's check: %+v %v", checks, err)
	}

	if out := run("infra", "plan", "."); !strings.Contains(out, "No changes.") {
		t.Fatalf("second plan:\n%s", out)
	}
	if out := run("-o", "json", "infra", "output", "workers"); !strings.Contains(out, `"missing":"fallback"`) || !strings.Contains(out, `"workers":"4"`) {
		t.Fatalf("data consul_keys: %s", out)
	}
	// A module address with a for_each key, one argv word, as a shell gives it.
	if out := run("infra", "state", "show", `module.site["blue"].local_file.conf`, "workspace=shop"); !strings.Contains(out, "blue.conf") {
		t.Fatalf("state show of a module address: %s", out)
	}
	if out := run("infra", "plan", ".", `target=module.site["green"]`); !strings.Contains(out, "No changes.") {
		t.Fatalf("targeted plan: %s", out)
	}

	// A key changed by hand is put back; a new setting adds a key; a key
	// put by hand under the managed prefix is deleted.
	if _, err := kv.Put(&api.KVPair{Key: "shop/config/workers", Value: []byte("99")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "shop/prefix/stray", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	env = []string{`TF_VAR_settings={"log_level":"debug","workers":"4","cache":"on"}`, httpEnv}
	plan = run("infra", "plan", ".")
	if !strings.Contains(plan, "# consul_keys.app will be updated in-place") || !strings.Contains(plan, "# consul_key_prefix.myapp_config will be updated in-place") || !strings.Contains(plan, "Plan: 0 to add, 2 to change, 0 to destroy.") {
		t.Fatalf("plan after edits:\n%s", plan)
	}
	run("infra", "apply", ".", "auto-approve")
	for key, want := range map[string]string{"shop/config/workers": "4", "shop/config/log_level": "debug", "shop/config/cache": "on"} {
		if p, _, err := kv.Get(key, nil); err != nil || p == nil || string(p.Value) != want {
			t.Fatalf("consul kv %s after update: %+v %v, want %q", key, p, err, want)
		}
	}
	if p, _, err := kv.Get("shop/prefix/stray", nil); err != nil || p != nil {
		t.Fatalf("the stray key under the prefix: %+v %v", p, err)
	}
	if out := run("infra", "plan", "."); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after update:\n%s", out)
	}

	// A module input that fails its validation is refused with its message.
	writeFiles(t, dir, map[string]string{"bad.auto.tfvars": "sites = { red = { port = 80 } }\n"})
	r := cliEnvIn(t, d, dir, env, "infra", "plan", ".")
	if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "The port must be above 1024.") {
		t.Fatalf("validation: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	os.Remove(filepath.Join(dir, "bad.auto.tfvars"))

	out = run("infra", "destroy", ".", "auto-approve")
	if !strings.Contains(out, "Destroy complete! Resources: 8 destroyed.") {
		t.Fatalf("destroy:\n%s", out)
	}
	if ps, _, err := kv.List("shop/", nil); err != nil || len(ps) != 0 {
		t.Fatalf("keys left after destroy: %v %v", ps, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "blue.conf")); !os.IsNotExist(err) {
		t.Fatalf("blue.conf after destroy: %v", err)
	}
	if svcs, _, _ := c.Catalog().Service("shop", "", nil); len(svcs) != 0 {
		t.Fatalf("service left after destroy: %+v", svcs)
	}
}

// TestInfraTerraformDocker runs kreuzwerker/docker's docker_image and
// docker_container, as their documentation writes them, on the runtime
// engine: the container serves HTTP reached by curl on its published
// port; a second plan is empty; stopped by hand it is started again;
// destroy removes it.
func TestInfraTerraformDocker(t *testing.T) {
	requireRuntime(t, "curl")
	d, _ := containerDaemon(t, "cairnf", "10.86", nil)
	importBusybox(t, d, map[string]string{"/www/index.html": "hello from terraform\n"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := filepath.Join(t.TempDir(), "web")
	writeFiles(t, dir, map[string]string{"main.tf": fmt.Sprintf(`
terraform {
  required_providers {
    docker = {
      source  = "kreuzwerker/docker"
      version = "~> 3.0"
    }
  }
}

provider "docker" {}

resource "docker_image" "busybox" {
  name         = "busybox"
  keep_locally = true
}

resource "docker_container" "web" {
  name    = "tf-web"
  image   = docker_image.busybox.image_id
  command = ["httpd", "-f", "-p", "80", "-h", "/www"]
  env     = ["GREETING=hello"]
  restart = "no"

  ports {
    internal = 80
    external = %d
  }

  networks_advanced {
    name = "bridge"
  }
}

output "ip" {
  value = docker_container.web.network_data[0].ip_address
}
`, port)})
	run := func(args ...string) string {
		t.Helper()
		return cliInOK(t, d, dir, args...)
	}
	if out := run("infra", "plan", "."); !strings.Contains(out, "Plan: 2 to add, 0 to change, 0 to destroy.") {
		t.Fatalf("plan:\n%s", out)
	}
	run("infra", "apply", ".", "auto-approve")
	curl := func(url string) string {
		var out []byte
		waitFor(t, "httpd at "+url, 10*time.Second, func() bool {
			var err error
			out, err = exec.Command("curl", "-sf", "--max-time", "2", url).Output()
			return err == nil
		})
		return string(out)
	}
	if got := curl(fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello from terraform\n" {
		t.Fatalf("curl: %q", got)
	}
	ip := strings.TrimSpace(strings.Trim(strings.TrimSpace(run("-o", "json", "infra", "output", "ip")), "\n"))
	var row struct{ Value string }
	if err := json.Unmarshal([]byte(ip), &row); err != nil || row.Value == "" {
		t.Fatalf("output ip: %q %v", ip, err)
	}
	if got := curl("http://" + row.Value + ":80/"); got != "hello from terraform\n" {
		t.Fatalf("curl the container's address: %q", got)
	}
	if out := run("infra", "plan", "."); !strings.Contains(out, "No changes.") {
		t.Fatalf("second plan:\n%s", out)
	}

	// Stopped by hand: must_run starts it again.
	cliOK(t, d, "stop", "tf-web")
	if out := run("infra", "plan", "."); !strings.Contains(out, "~ must_run") || !strings.Contains(out, "Plan: 0 to add, 1 to change, 0 to destroy.") {
		t.Fatalf("plan after a stop:\n%s", out)
	}
	run("infra", "apply", ".", "auto-approve")
	if got := curl(fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello from terraform\n" {
		t.Fatalf("curl after the restart: %q", got)
	}
	if out := run("infra", "plan", "."); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after the restart:\n%s", out)
	}

	if out := run("infra", "destroy", ".", "auto-approve"); !strings.Contains(out, "Destroy complete! Resources: 2 destroyed.") {
		t.Fatalf("destroy:\n%s", out)
	}
	if _, _, code := cli(t, d, "inspect", "tf-web"); code == 0 {
		t.Fatal("the container is still there after destroy")
	}
}
