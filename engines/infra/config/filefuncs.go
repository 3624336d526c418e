package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// ReadFunc reads a file for file(), filebase64(), fileexists() and
// templatefile(). The engine reads with the caller's filesystem
// credentials, so a configuration reads only what its author could, and
// answers private when other users could not read the file: what the
// function answers is then sensitive (journaled as a digest only).
type ReadFunc func(path string) (data []byte, private bool, err error)

// FunctionsFor returns Functions() with Terraform's file functions added,
// reading through read; relative paths are taken from base (the root
// module's directory, as path.cwd is for terraform run there).
func FunctionsFor(read ReadFunc, base string) map[string]function.Function {
	fs := Functions()
	if read == nil {
		return fs
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(base, p)
	}
	pathParam := []function.Parameter{{Name: "path", Type: cty.String}}
	readString := func(p string) (string, bool, error) {
		b, private, err := read(abs(p))
		if err != nil {
			return "", false, fmt.Errorf("no file exists at %q; this function works only with files that are distributed as part of the configuration source code, so if this file will be created by a resource in this configuration you must instead obtain this result from an attribute of that resource (%v)", p, err)
		}
		if !utf8.Valid(b) {
			return "", false, fmt.Errorf("contents of %s are not valid UTF-8; use the filebase64 function to obtain the Base64 encoded contents or the other file functions (e.g. filemd5, filesha256) to obtain file hashing results instead", p)
		}
		return string(b), private, nil
	}
	mark := func(v cty.Value, private bool) cty.Value {
		if private {
			return v.Mark(Sensitive)
		}
		return v
	}
	fs["file"] = function.New(&function.Spec{
		Params: pathParam, Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, private, err := readString(args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(0, err)
			}
			return mark(cty.StringVal(s), private), nil
		},
	})
	fs["filebase64"] = function.New(&function.Spec{
		Params: pathParam, Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, private, err := read(abs(args[0].AsString()))
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "no file exists at %q (%v)", args[0].AsString(), err)
			}
			return mark(cty.StringVal(base64.StdEncoding.EncodeToString(b)), private), nil
		},
	})
	fs["fileexists"] = function.New(&function.Spec{
		Params: pathParam, Type: function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			_, _, err := read(abs(args[0].AsString()))
			switch {
			case err == nil:
				return cty.True, nil
			case os.IsNotExist(err):
				return cty.False, nil
			}
			return cty.UnknownVal(cty.Bool), function.NewArgErrorf(0, "failed to stat %s: %v", args[0].AsString(), err)
		},
	})
	tmplFuncs := Functions()
	fs["templatefile"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.DynamicPseudoType),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			src, private, err := readString(p)
			if err != nil {
				return cty.DynamicVal, function.NewArgError(0, err)
			}
			expr, diags := hclsyntax.ParseTemplate([]byte(src), p, hcl.Pos{Line: 1, Column: 1})
			if diags.HasErrors() {
				return cty.DynamicVal, function.NewArgError(0, diags)
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.DynamicVal, function.NewArgErrorf(1, "invalid vars value: must be a map")
			}
			m := map[string]cty.Value{}
			if !vars.IsNull() {
				for it := vars.ElementIterator(); it.Next(); {
					k, v := it.Element()
					m[k.AsString()] = v
				}
			}
			for _, tr := range expr.Variables() {
				if _, ok := m[tr.RootName()]; !ok {
					return cty.DynamicVal, function.NewArgErrorf(1, "vars map does not contain key %q, referenced at %s", tr.RootName(), tr.SourceRange())
				}
			}
			v, diags := expr.Value(&hcl.EvalContext{Variables: m, Functions: tmplFuncs})
			if diags.HasErrors() {
				return cty.DynamicVal, diags
			}
			return mark(v, private), nil
		},
	})
	return fs
}

// sensitiveFunc is Terraform's sensitive(): the value, marked sensitive.
var sensitiveFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true, AllowMarked: true, AllowDynamicType: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return args[0].Mark(Sensitive), nil
	},
})

// nonsensitiveFunc is Terraform's nonsensitive(): the value, unmarked.
var nonsensitiveFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true, AllowMarked: true, AllowDynamicType: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, marks := args[0].Unmark()
		delete(marks, Sensitive)
		return v.WithMarks(marks), nil
	},
})
