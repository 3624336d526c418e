package infra

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	version "github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"

	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// TerraformVersion is the Terraform release whose language cairn
// answers to in required_version: the blocks it reads (import, check,
// removed) are those of Terraform 1.7.
const TerraformVersion = "1.7.0"

// builtinSource is the source of Terraform's built-in provider
// (terraform_data, terraform_remote_state).
const builtinSource = "terraform.io/builtin/terraform"

// providerSources maps every Terraform provider source cairn offers
// ("hashicorp/random") to its provider's name.
func providerSources() map[string]string {
	out := map[string]string{builtinSource: "terraform"}
	for name, p := range provider.All() {
		if s, ok := p.(provider.Sourced); ok {
			out[s.Source()] = name
		}
	}
	return out
}

// normalizeSource writes a provider source as cairn compares it:
// registry.terraform.io/hashicorp/random and HashiCorp/Random are
// hashicorp/random.
func normalizeSource(s string) string {
	s = strings.ToLower(s)
	s = strings.TrimPrefix(s, "registry.terraform.io/")
	if !strings.Contains(s, "/") {
		s = "hashicorp/" + s
	}
	return s
}

// checkTerraform checks every module's terraform blocks: required_version
// against TerraformVersion, and required_providers against the providers
// cairn has, naming what is missing.
func checkTerraform(c *config.Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	have, _ := version.NewVersion(TerraformVersion)
	for _, rv := range c.Terraform.RequiredVersion {
		cs, err := version.NewConstraint(rv.Constraint)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid required_version constraint",
				Detail: err.Error(), Subject: rv.Range.Ptr()})
			continue
		}
		if !cs.Check(have) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported Terraform Core version",
				Detail:  fmt.Sprintf("This configuration does not support Terraform version %s (the language cairn implements). To proceed, either choose another supported Terraform version or update this version constraint (%s).", TerraformVersion, rv.Constraint),
				Subject: rv.Range.Ptr()})
		}
	}
	sources := providerSources()
	for _, name := range slices.Sorted(maps.Keys(c.Terraform.RequiredProviders)) {
		rp := c.Terraform.RequiredProviders[name]
		src := normalizeSource(rp.Source)
		if _, ok := sources[src]; ok {
			continue
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Provider not available",
			Detail:  fmt.Sprintf("required_providers.%s asks for %s, which cairn does not have; cairn's Terraform providers are %s.", name, src, strings.Join(slices.Sorted(maps.Keys(sources)), ", ")),
			Subject: rp.Range.Ptr()})
	}
	for _, mc := range c.ModuleCalls {
		if mc.Child != nil {
			diags = append(diags, checkTerraform(mc.Child)...)
		}
	}
	return diags
}

// absentTypes are types of the Terraform providers cairn offers that it
// does not have, with why: a configuration naming one is told so.
var absentTypes = map[string]string{
	"consul_node":            "hashicorp/consul's consul_node registers an external node in the catalog; cairn's discovery engine catalogs its own node only",
	"consul_acl_policy":      "cairn's discovery engine has no Consul ACLs (the socket's policy governs access)",
	"consul_acl_token":       "cairn's discovery engine has no Consul ACLs (the socket's policy governs access)",
	"consul_config_entry":    "cairn's discovery engine has no Connect (service mesh) configuration",
	"consul_prepared_query":  "cairn's discovery engine has no prepared queries",
	"docker_network":         "cairn's runtime has the networks bridge, host and none, made by the daemon",
	"docker_volume":          "cairn's runtime mounts host paths only (docker_container volumes with host_path)",
	"docker_registry_image":  "cairn pushes no images from an apply",
	"docker_service":         "cairn's runtime has no swarm services (the deploy engine rolls containers)",
	"docker_plugin":          "cairn's runtime has no plugins",
	"docker_secret":          "cairn's runtime has no swarm secrets",
	"docker_config":          "cairn's runtime has no swarm configs",
	"docker_tag":             "tag images with cairn's image tag",
	"null_data_source":       "hashicorp/null's null_data_source is deprecated by the provider: use locals",
	"terraform_remote_state": "cairn's state is its journal: read another workspace's outputs with infra output workspace=NAME",
}
