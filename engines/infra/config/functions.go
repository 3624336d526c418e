package config

import (
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cairnhq/cairn/internal/hclfuncs"
)

// Functions returns the functions a configuration may call: HCL's and
// cty's standard library under Terraform's names, and the cidr functions
// (internal/hclfuncs, which Packer templates share). The file functions
// need a reader that reads as the caller: FunctionsFor adds them.
// sensitive() and nonsensitive() are the infra engine's own: they mark
// values its plans and state hide.
func Functions() map[string]function.Function {
	fs := hclfuncs.Functions()
	fs["sensitive"] = sensitiveFunc
	fs["nonsensitive"] = nonsensitiveFunc
	return fs
}
