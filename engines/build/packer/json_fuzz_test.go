package packer

import (
	"testing"
	"time"
)

// FuzzJSON: any bytes as a legacy Packer JSON template are read or
// refused with an error, never a panic (the template engine included).
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"variables":{"v":"1"},"builders":[{"type":"docker","image":"busybox","commit":true,"changes":["CMD [\"sh\"]"]}],"provisioners":[{"type":"shell","inline":["echo {{user ` + "`v`" + `}}"]}],"post-processors":[[{"type":"docker-tag","repository":"x"}]]}`,
		`{"builders":[{"type":"amazon-ebs"}]}`, `{"builders":[{"type":"docker","image":"{{env ` + "`HOME`" + `}}"}]}`, `{`, `{"builders":[{"type":"docker","image":"{{timestamp}} {{isotime \"2006\"}} {{"}]}`,
	} {
		f.Add(s)
	}
	in := Inputs{Vars: map[string]string{}, Env: map[string]string{"HOME": "/root"}, Now: time.Unix(1700000000, 0)}
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = ParseJSON("t.json", []byte(src), in)
	})
}
