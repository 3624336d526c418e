package build

import (
	"fmt"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

func TestExposedPorts(t *testing.T) {
	for in, want := range map[string][]string{
		"80":        {"80/tcp"},
		"53/UDP":    {"53/udp"},
		"8000-8002": {"8000/tcp", "8001/tcp", "8002/tcp"},
	} {
		got, err := exposedPorts(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("exposedPorts(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"http", "80/icmp", "9-3"} {
		if _, err := exposedPorts(bad); err == nil {
			t.Errorf("exposedPorts(%q) gave no error", bad)
		}
	}
}

// TestCacheKey pins Docker's rule: a key changes with the parent, the
// instruction, an ARG in effect and the sources, and not with the order
// the ARGs were declared in.
func TestCacheKey(t *testing.T) {
	base := cacheKey("sha256:p", "RUN make", []arg{{"A", "1"}, {"B", "2"}}, "")
	if cacheKey("sha256:p", "RUN make", []arg{{"B", "2"}, {"A", "1"}}, "") != base {
		t.Error("the ARGs' order changed the key")
	}
	for name, k := range map[string]string{
		"parent":      cacheKey("sha256:q", "RUN make", []arg{{"A", "1"}, {"B", "2"}}, ""),
		"instruction": cacheKey("sha256:p", "RUN make all", []arg{{"A", "1"}, {"B", "2"}}, ""),
		"arg":         cacheKey("sha256:p", "RUN make", []arg{{"A", "1"}, {"B", "3"}}, ""),
		"sources":     cacheKey("sha256:p", "RUN make", []arg{{"A", "1"}, {"B", "2"}}, "sha256:s"),
	} {
		if k == base {
			t.Errorf("a different %s gave the same key", name)
		}
	}
}

// TestApplyConfig pins the config instructions against Docker's
// documented results.
func TestApplyConfig(t *testing.T) {
	df, err := ParseDockerfile("Dockerfile", []byte(`FROM scratch
ENV A=1 B="two words"
LABEL version=1.0 "com.example.x"=y
MAINTAINER Jane <jane@example.com>
WORKDIR /app
WORKDIR sub
USER 1000:1000
EXPOSE 80 53/udp
VOLUME ["/data"]
CMD echo $A
ENTRYPOINT ["/bin/tini", "--"]
SHELL ["/bin/bash", "-c"]
CMD run it
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost
ONBUILD RUN make
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &v1.ConfigFile{}
	b := &builder{lex: shell.NewLex(df.Escape)}
	for _, c := range df.Stages[0].Commands {
		// Words expand (quotes removed, variables replaced) as the builder
		// expands them before a step.
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(b.expander(&stage{cfg: cfg})); err != nil {
				t.Fatal(err)
			}
		}
		if err := applyConfig(cfg, c); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
	c := cfg.Config
	check := func(what string, got, want any) {
		t.Helper()
		if !equal(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Env", c.Env, []string{"A=1", "B=two words"})
	check("Labels", c.Labels, map[string]string{"version": "1.0", "com.example.x": "y", "maintainer": "Jane <jane@example.com>"})
	check("Author", cfg.Author, "Jane <jane@example.com>")
	check("WorkingDir", c.WorkingDir, "/app/sub")
	check("User", c.User, "1000:1000")
	check("ExposedPorts", c.ExposedPorts, map[string]struct{}{"80/tcp": {}, "53/udp": {}})
	check("Volumes", c.Volumes, map[string]struct{}{"/data": {}})
	check("Entrypoint", c.Entrypoint, []string{"/bin/tini", "--"})
	// The second CMD is a shell form after SHELL: wrapped in that shell.
	check("Cmd", c.Cmd, []string{"/bin/bash", "-c", "run it"})
	check("StopSignal", c.StopSignal, "SIGTERM")
	check("Healthcheck.Test", c.Healthcheck.Test, []string{"CMD-SHELL", "wget -q localhost"})
	check("Healthcheck.Retries", c.Healthcheck.Retries, 2)
	check("OnBuild", c.OnBuild, []string{"RUN make"})
}

func equal(a, b any) bool { return sprint(a) == sprint(b) }

func sprint(v any) string { return fmt.Sprintf("%v", v) }
