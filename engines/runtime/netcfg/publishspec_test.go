package netcfg

import (
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestParsePublish pins ParsePublish on testdata/publish: each input line
// is a -p value, each output line what it parses to or the error (go test
// -rewrite regenerates the output).
func TestParsePublish(t *testing.T) {
	datadriven.RunTest(t, "testdata/publish", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "parse" {
			d.Fatalf(t, "unknown command %q", d.Cmd)
		}
		var out strings.Builder
		for _, line := range strings.Split(d.Input, "\n") {
			spec, err := ParsePublish(line)
			if err != nil {
				out.WriteString(line + " -> error: " + err.Error() + "\n")
				continue
			}
			out.WriteString(line + " -> " + spec.String() + "\n")
		}
		return out.String()
	})
}
