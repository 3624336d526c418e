package config

import (
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cairnhq/cairn/internal/hclfuncs"
)

// Functions returns the functions a configuration may call: HCL's and
// cty's standard library under Terraform's names, and the cidr functions
// (internal/hclfuncs, which Packer templates share). file() and
// templatefile() are left out: the daemon reads files as root on behalf
// of the caller, so a configuration cannot make it read others.
func Functions() map[string]function.Function { return hclfuncs.Functions() }
