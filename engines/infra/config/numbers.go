package config

import (
	"fmt"
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxBinaryExponent bounds number literals (2^1100 is about 1e331): HCL
// keeps numbers as arbitrary-precision floats, and turning 1e9999999 into
// text (a template, a string variable) takes seconds, 1e600000000 days.
const maxBinaryExponent = 1100

// CheckNumbers rejects number literals beyond float64's range in src, so
// that a few bytes of configuration cannot tie the daemon up.
func CheckNumbers(src []byte, filename string) hcl.Diagnostics {
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	var diags hcl.Diagnostics
	for _, tk := range toks {
		if tk.Type != hclsyntax.TokenNumberLit {
			continue
		}
		f, _, err := big.ParseFloat(string(tk.Bytes), 10, 512, big.ToNearestEven)
		if err != nil {
			continue // the parser reports it
		}
		if exp := f.MantExp(nil); exp > maxBinaryExponent || exp < -maxBinaryExponent {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Number out of range",
				Detail: fmt.Sprintf("%.40s is beyond what cairn accepts (about ±1e308); write a smaller number.", tk.Bytes), Subject: tk.Range.Ptr()})
		}
	}
	return diags
}
