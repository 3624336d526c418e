package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"256MiB": 256 << 20, "512m": 512 << 20, "1g": 1 << 30, "1024": 1024, "64k": 64 << 10,
		"1.5g": 3 << 29, "32MB": 32 << 20, "100b": 100,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "12xb", "MiB", "-5m"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestParseRestart(t *testing.T) {
	for in, want := range map[string]restartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"}, "unless-stopped": {Name: "unless-stopped"},
		"on-failure": {Name: "on-failure"}, "on-failure:3": {Name: "on-failure", MaximumRetryCount: 3},
	} {
		got, err := parseRestart(in)
		if err != nil || got != want {
			t.Errorf("parseRestart(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"sometimes", "always:3", "on-failure:x", "on-failure:-1"} {
		if _, err := parseRestart(in); err == nil {
			t.Errorf("parseRestart(%q) accepted", in)
		}
	}
}

func TestParseVolume(t *testing.T) {
	v, err := parseVolume("/srv/data/:/data:ro")
	if err != nil || v != (volume{src: "/srv/data", dst: "/data", readOnly: true}) {
		t.Fatalf("parseVolume: %+v, %v", v, err)
	}
	for _, in := range []string{"/a", "rel:/b", "/a:rel", "/a:/b:rx", "/a:/b:ro:x"} {
		if _, err := parseVolume(in); err == nil {
			t.Errorf("parseVolume(%q) accepted", in)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	if !slices.Equal(got, []string{"PATH=/bin", "A=2", "B=3"}) {
		t.Fatalf("mergeEnv: %v", got)
	}
}

// TestContainerEnv: an image that sets no PATH gets Docker's default,
// one that does keeps its own, and the run's PATH wins over both.
func TestContainerEnv(t *testing.T) {
	for _, tc := range []struct {
		image, run, want []string
	}{
		{nil, []string{"A=1"}, []string{defaultPath, "A=1"}},
		{[]string{"PATH=/bin", "A=1"}, nil, []string{"PATH=/bin", "A=1"}},
		{[]string{"A=1"}, []string{"PATH=/opt/bin"}, []string{"A=1", "PATH=/opt/bin"}},
	} {
		if got := containerEnv(tc.image, tc.run); !slices.Equal(got, tc.want) {
			t.Errorf("containerEnv(%q, %q) = %q, want %q", tc.image, tc.run, got, tc.want)
		}
	}
}

func TestBundleSpec(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rootfs", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs", "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n"), 0o644)
	c := &Container{ID: strings.Repeat("ab", 32), Config: Config{Cmd: []string{"httpd", "-f"}, Env: []string{"PATH=/bin"}, User: "web"},
		Host: Host{Memory: 32 << 20, NanoCPUs: 5e8, PidsLimit: 16, Network: "bridge", Binds: []string{"/srv:/srv:ro"}}}
	s, err := bundleSpec(c, dir, "/run/netns/x")
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 33 || s.Process.User.GID != 44 {
		t.Errorf("user web: %+v", s.Process.User)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 32<<20 || *r.Memory.Swap != 32<<20 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 16 {
		t.Errorf("resources: %+v %+v %+v", r.Memory, r.CPU, r.Pids)
	}
	if s.Linux.CgroupsPath != "/cairn/"+c.ID {
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	}
	if !slices.Contains(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/x"}) {
		t.Errorf("network namespace: %+v", s.Linux.Namespaces)
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool {
		return m.Destination == "/srv" && m.Source == "/srv" && slices.Contains(m.Options, "ro")
	}) {
		t.Errorf("volume: %+v", s.Mounts)
	}
	if s.Hostname != c.ID[:12] || s.Process.Cwd != "/" {
		t.Errorf("hostname %q cwd %q", s.Hostname, s.Process.Cwd)
	}
	c.Host.Network = "host"
	s, _ = bundleSpec(c, dir, "")
	if slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace }) {
		t.Error("network=host has a network namespace")
	}
	c.Config.User = "nobody"
	if _, err := bundleSpec(c, dir, ""); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("an unknown user: %v", err)
	}
}

func TestStartError(t *testing.T) {
	dir := t.TempDir()
	for msg, want := range map[string]int{
		`runc run failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH`: 127,
		`runc run failed: unable to start container process: exec: \"/x\": permission denied`:                      126,
		`runc run failed: something else`: 125,
	} {
		os.WriteFile(filepath.Join(dir, "runc.log"), []byte(`{"level":"info","msg":"x"}`+"\n"+`{"level":"error","msg":"`+msg+`"}`+"\n"), 0o600)
		_, code, ok := startError(dir)
		if !ok || code != want {
			t.Errorf("%s: code %d ok %v; want %d", msg, code, ok, want)
		}
	}
	os.WriteFile(filepath.Join(dir, "runc.log"), []byte(`{"level":"info","msg":"x"}`+"\n"), 0o600)
	if _, _, ok := startError(dir); ok {
		t.Error("a log without an error reads as a start failure")
	}
}

func TestStatusLine(t *testing.T) {
	c := Container{State: State{Status: "exited", ExitCode: 3}}
	if s := status(c); !strings.HasPrefix(s, "Exited (3) ") {
		t.Fatalf("status: %q", s)
	}
}
