package image_test

import (
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/runtime/image"
)

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                          "busybox:latest",
		"busybox:1.36":                     "busybox:1.36",
		"docker.io/library/busybox:latest": "busybox:latest",
		"index.docker.io/team/app":         "team/app:latest",
		"team/app:v2":                      "team/app:v2",
		"localhost:5000/app":               "localhost:5000/app:latest",
		"quay.io/org/app:tag_1.0-rc":       "quay.io/org/app:tag_1.0-rc",
	} {
		got, err := image.NormalizeName(in)
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Busybox", "a b", "busybox@sha256:" + strings.Repeat("a", 64), "busybox:", "-x", "a:b:c"} {
		if got, err := image.NormalizeName(in); err == nil {
			t.Errorf("NormalizeName(%q) = %q, want an error", in, got)
		} else if !strings.Contains(err.Error(), "invalid image name") {
			t.Errorf("NormalizeName(%q) error %q does not say the name is invalid", in, err)
		}
	}
}
