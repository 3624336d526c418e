package packer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// seedJSON is the shape of the seed's sample: two cloud builders, and a
// docker builder added.
const seedJSON = `{
  "variables": {"version": "1.0", "region": "us-east-1", "who": "{{env ` + "`USER`" + `}}"},
  "builders": [
    {"type": "amazon-ebs", "region": "{{user ` + "`region`" + `}}", "ami_name": "web-{{timestamp}}"},
    {"type": "googlecompute", "project_id": "p"},
    {"type": "docker", "image": "busybox", "commit": true, "changes": ["LABEL v={{user ` + "`version`" + `}}"], "run_command": ["-d", "{{.Image}}"]}
  ],
  "provisioners": [
    {"type": "shell", "inline": ["echo {{user ` + "`who`" + `}} {{build_name}}"], "only": ["docker"]},
    {"type": "file", "source": "a", "destination": "/a", "except": ["docker"]}
  ],
  "post-processors": [
    "manifest",
    [{"type": "docker-tag", "repository": "web", "tag": "{{user ` + "`version`" + `}}"}, {"type": "checksum", "checksum_types": ["sha256"]}]
  ]
}`

func TestParseJSONSeed(t *testing.T) {
	tm, err := ParseJSON("web.json", []byte(seedJSON), Inputs{Vars: map[string]string{"version": "2.0", "nosuch": "x"}, Env: map[string]string{"USER": "ada"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if tm.Variables["version"] != "2.0" || tm.Variables["who"] != "ada" {
		t.Errorf("variables %v", tm.Variables)
	}
	if len(tm.Warnings) != 1 || !strings.Contains(tm.Warnings[0], `"nosuch"`) {
		t.Errorf("warnings %q", tm.Warnings)
	}
	if _, err := tm.Select(nil, nil); err == nil || !strings.Contains(err.Error(), `builder "amazon-ebs" has type amazon-ebs, which cannot run here`) || !strings.Contains(err.Error(), "the types available: docker, oci") {
		t.Errorf("Select without except: %v", err)
	}
	for _, sel := range [][2][]string{{nil, {"amazon-ebs", "googlecompute"}}, {{"docker"}, nil}} {
		bs, err := tm.Select(sel[0], sel[1])
		if err != nil || len(bs) != 1 || bs[0].Name != "docker" {
			t.Fatalf("Select(%v): %v, %v", sel, bs, err)
		}
	}
	d := tm.Builders[2]
	if d.Image != "busybox" || !d.Commit || !slices.Equal(d.Changes, []string{"LABEL v=2.0"}) || !slices.Equal(d.Ignored, []string{"run_command"}) {
		t.Errorf("docker builder %+v", d)
	}
	p := d.Provisioners[0]
	if !slices.Equal(p.Inline, []string{"echo ada "}) || !Applies(p.Only, p.Except, "docker", "docker") || Applies(d.Provisioners[1].Only, d.Provisioners[1].Except, "docker", "docker") {
		t.Errorf("provisioners %+v", d.Provisioners)
	}
	if len(d.PostProcessors) != 2 || d.PostProcessors[0][0].Type != "manifest" || len(d.PostProcessors[1]) != 2 || d.PostProcessors[1][0].Tags[0] != "2.0" {
		t.Errorf("post-processors %+v", d.PostProcessors)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"{\n  \"builders\": [\n    {\"type\": \"docker\",}\n  ]\n}", "web.json:3:23: invalid character '}'"},
		{`{"builders": [{"type": "docker", "image": "x", "commit": true}], "provisioners": [{"type": "ansible"}]}`, `provisioner type "ansible" is not available here`},
		{`{"variables": {"must": null}, "builders": [{"type": "docker", "image": "x", "commit": true}]}`, `required variable "must" has no value: give var.must=VALUE`},
		{`{"builders": [{"type": "docker", "image": "x"}]}`, "commit or export_path: one is required"},
		{`{"builders": [{"type": "docker", "image": "x", "commit": true}], "provisioners": [{"type": "shell"}]}`, "give exactly one of inline, script, scripts"},
		{`{"builders": [{"type": "docker", "image": "{{user ` + "`nope`" + `}}", "commit": true}]}`, `no variable "nope"`},
		{`{"builderz": []}`, `unknown field "builderz"`},
	} {
		_, err := ParseJSON("web.json", []byte(tc.src), Inputs{Now: now})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

const seedHCL = `variable "version" {
  type    = string
  default = "1.0"
}
locals {
  tag  = "v${var.version}"
  name = local.tag
}
source "docker" "web" {
  image   = "busybox"
  commit  = true
  changes = ["LABEL v=${local.name}"]
}
source "amazon-ebs" "web" {
  region = "us-east-1"
}
build {
  sources = ["source.docker.web", "source.amazon-ebs.web"]
  provisioner "shell" {
    inline = ["echo ${var.version}"]
    only   = ["docker.web"]
  }
  post-processor "manifest" {}
  post-processors {
    post-processor "docker-tag" {
      repository = "web"
      tags       = [var.version, "latest"]
    }
    post-processor "checksum" {}
  }
}
`

func TestParseHCL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.pkr.hcl")
	os.WriteFile(path, []byte(seedHCL), 0o644)
	vf := filepath.Join(dir, "prod.pkrvars.hcl")
	os.WriteFile(vf, []byte("version = \"3.1\"\n"), 0o644)
	tm, err := ParseHCL(path, Inputs{VarFiles: []string{vf}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := tm.Select(nil, []string{"amazon-ebs.*"})
	if err != nil || len(bs) != 1 {
		t.Fatalf("Select: %v %v", bs, err)
	}
	d := bs[0]
	if d.Name != "docker.web" || !slices.Equal(d.Changes, []string{"LABEL v=v3.1"}) || !slices.Equal(d.Provisioners[0].Inline, []string{"echo 3.1"}) {
		t.Errorf("builder %+v", d)
	}
	if len(d.PostProcessors) != 2 || len(d.PostProcessors[1]) != 2 || !slices.Equal(d.PostProcessors[1][0].Tags, []string{"3.1", "latest"}) {
		t.Errorf("post-processors %+v", d.PostProcessors)
	}
	if _, err := tm.Select([]string{"docker.web"}, nil); err != nil {
		t.Errorf("only=docker.web: %v", err)
	}

	bad := strings.Replace(seedHCL, `image   = "busybox"`, `image   = var.nosuch`, 1)
	os.WriteFile(path, []byte(bad), 0o644)
	if _, err := ParseHCL(path, Inputs{Now: now}); err == nil || !strings.Contains(err.Error(), "web.pkr.hcl:10:") || !strings.Contains(err.Error(), "Unsupported attribute") {
		t.Errorf("an unknown variable: %v", err)
	}
	os.WriteFile(path, []byte("build {\n  sources = [\n"), 0o644)
	if _, err := ParseHCL(path, Inputs{Now: now}); err == nil || !strings.Contains(err.Error(), "web.pkr.hcl:") {
		t.Errorf("a syntax error: %v", err)
	}
}

// TestOCIBuilder: the oci builder reads the docker builder's fields.
func TestOCIBuilder(t *testing.T) {
	tm, err := ParseJSON("t.json", []byte(`{"builders": [{"type": "oci", "image": "busybox", "export_path": "x.tar"}]}`), Inputs{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := tm.Select([]string{"oci"}, nil)
	if err != nil || len(bs) != 1 || bs[0].Image != "busybox" || bs[0].ExportPath != "x.tar" || bs[0].Commit {
		t.Errorf("oci builder: %+v, %v", bs, err)
	}
}
