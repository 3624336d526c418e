package capture

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func resFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "res", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureDir reads a cgroup's files from a fixture directory, as the
// source reads them from /sys/fs/cgroup.
func fixtureDir(dir string) readFunc {
	return func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join("testdata", "res", dir, name))
	}
}

func TestResParseStat(t *testing.T) {
	got, err := parseResStat(resFixture(t, "stat_threads"))
	if err != nil {
		t.Fatal(err)
	}
	want := resStat{
		procStat: procStat{PID: 1234, Comm: "my (app) srv", State: 'S', PPID: 1, StartTime: 98765},
		Flags:    4194560, Utime: 1523, Stime: 377, Threads: 12, RSSPages: 25600,
	}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got.CPUTicks() != 1900 || float64(got.CPUTicks())/clkTck != 19 {
		t.Errorf("cpu ticks %d, want 1900 (19 s)", got.CPUTicks())
	}
	if got.Flags&pfKthread != 0 {
		t.Error("a user process flagged as a kernel thread")
	}
	k, err := parseResStat(resFixture(t, "stat_kthread"))
	if err != nil || k.Flags&pfKthread == 0 || k.RSSPages != 0 || k.Stime != 7 {
		t.Errorf("kthreadd: %+v, %v", k, err)
	}
	// The proc source's fixture has the fields too.
	if c, err := parseResStat(procFixture(t, "stat_cat")); err != nil || c.Threads != 1 {
		t.Errorf("stat_cat: %+v, %v", c, err)
	}
	for _, bad := range []string{
		"",
		"12 (cat) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",       // too short for rss
		"12 (cat) S 1 2 3 4 5 x 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21", // bad flags
		"12 (cat) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 x",  // bad rss
	} {
		if _, err := parseResStat([]byte(bad)); err == nil {
			t.Errorf("parseResStat(%q): no error", bad)
		}
	}
}

func TestResParseIO(t *testing.T) {
	r, w, err := parseProcIO(resFixture(t, "io"))
	if err != nil || r != 40960 || w != 8192 {
		t.Errorf("io: read %d write %d, %v; want 40960 8192", r, w, err)
	}
	if _, _, err := parseProcIO(resFixture(t, "io_truncated")); err == nil {
		t.Error("io without read_bytes: no error")
	}
}

func TestResFlatKeyed(t *testing.T) {
	b := []byte("total_inactive_file 7\ninactive_filex 8\ninactive_file 9\nlast 10")
	for key, want := range map[string]uint64{"inactive_file": 9, "total_inactive_file": 7, "last": 10} {
		if got, ok := flatKeyed(b, key); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", key, got, ok, want)
		}
	}
	if _, ok := flatKeyed(b, "inactive"); ok {
		t.Error("a key prefix matched")
	}
}

func TestResCgroupV2(t *testing.T) {
	s := sampleCgroupV2(fixtureDir("cgroup_v2"))
	want := cgroupSample{
		CPUNanos: 8123456000, HasCPU: true,
		Memory: 268435456, HasMemory: true,
		InactiveFile: 67108864, HasInactive: true,
		IORead: 1048576 + 4096, IOWrite: 2097152, HasIO: true,
	}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	d := s.data(7123456000, true)
	wantData := map[string]any{
		"cpu_s": 8.123456, "cpu_delta_s": 1.0,
		"memory": int64(268435456), "working_set": int64(268435456 - 67108864),
		"io_read": int64(1052672), "io_write": int64(2097152),
	}
	if !reflect.DeepEqual(d, wantData) {
		t.Errorf("data %v\nwant %v", d, wantData)
	}
	// The root cgroup of v2 has cpu.stat only: the rest is left out.
	root := sampleCgroupV2(func(name string) ([]byte, error) {
		if name == "cpu.stat" {
			return []byte("usage_usec 5\n"), nil
		}
		return nil, os.ErrNotExist
	})
	if d := root.data(0, false); !reflect.DeepEqual(d, map[string]any{"cpu_s": 5e-6}) {
		t.Errorf("root cgroup data %v", d)
	}
}

func TestResCgroupV1(t *testing.T) {
	dir := fixtureDir("cgroup_v1")
	s := sampleCgroupV1(dir, dir, dir)
	want := cgroupSample{
		CPUNanos: 7237040402740, HasCPU: true,
		Memory: 3399680, HasMemory: true,
		InactiveFile: 1048576, HasInactive: true, // total_, not the local inactive_file
		IORead: 4196, IOWrite: 8192, HasIO: true,
	}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	if ws, _ := s.WorkingSet(); ws != 3399680-1048576 {
		t.Errorf("working set %d", ws)
	}
	// A hierarchy not mounted is skipped, not an error.
	if s := sampleCgroupV1(nil, dir, nil); s.HasCPU || s.HasIO || !s.HasMemory {
		t.Errorf("memory only: %+v", s)
	}
	// The first pass has no delta; a counter that went back (a cgroup
	// recreated under the same path) gives none either.
	if d := s.data(0, false); d["cpu_delta_s"] != nil {
		t.Errorf("first pass has cpu_delta_s %v", d["cpu_delta_s"])
	}
	if d := want.data(want.CPUNanos+1, true); d["cpu_delta_s"] != nil {
		t.Errorf("counter going back gives cpu_delta_s %v", d["cpu_delta_s"])
	}
}

func TestResWorkingSet(t *testing.T) {
	for _, tc := range []struct {
		s  cgroupSample
		ws uint64
		ok bool
	}{
		{cgroupSample{Memory: 100, HasMemory: true, InactiveFile: 30, HasInactive: true}, 70, true},
		{cgroupSample{Memory: 100, HasMemory: true, InactiveFile: 130, HasInactive: true}, 0, true},
		{cgroupSample{Memory: 100, HasMemory: true}, 100, true},
		{cgroupSample{InactiveFile: 30, HasInactive: true}, 0, false},
	} {
		if ws, ok := tc.s.WorkingSet(); ws != tc.ws || ok != tc.ok {
			t.Errorf("%+v: %d %v, want %d %v", tc.s, ws, ok, tc.ws, tc.ok)
		}
	}
}

func TestResParseCgroupPaths(t *testing.T) {
	for _, tc := range []struct {
		file string
		want cgroupPaths
	}{
		{"cgroup_v2_docker", cgroupPaths{V2: "/system.slice/docker-4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899.scope"}},
		{"cgroup_v1_docker", cgroupPaths{V2: "/", V1: map[string]string{
			"pids":   "/docker/3f1c9a2b7d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef012",
			"memory": "/docker/3f1c9a2b7d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef012",
		}}},
	} {
		if got := parseCgroupPaths(procFixture(t, tc.file)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v\nwant %+v", tc.file, got, tc.want)
		}
	}
	got := parseCgroupPaths([]byte("4:cpu,cpuacct:/a\n2:name=systemd:/b\n"))
	want := cgroupPaths{V1: map[string]string{"cpu": "/a", "cpuacct": "/a", "name=systemd": "/b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("combined controllers: got %+v", got)
	}
}

func TestResParseCgroupMounts(t *testing.T) {
	v2 := parseCgroupMounts(resFixture(t, "mountinfo_v2"))
	if v2.V2 == nil || *v2.V2 != (cgroupMount{Dir: "/sys/fs/cgroup", Root: "/"}) || v2.V1 != nil {
		t.Errorf("v2 host: %+v", v2)
	}
	if d := v2.V2.Path("/system.slice/a.service"); d != "/sys/fs/cgroup/system.slice/a.service" {
		t.Errorf("v2 dir %q", d)
	}
	if d := v2.V2.Path("/"); d != "/sys/fs/cgroup" {
		t.Errorf("v2 root dir %q", d)
	}

	hy := parseCgroupMounts(resFixture(t, "mountinfo_v1_hybrid"))
	for _, c := range []string{"cpu", "cpuacct", "memory", "blkio", "name=systemd"} {
		if _, ok := hy.V1[c]; !ok {
			t.Errorf("hybrid: no %s mount in %+v", c, hy.V1)
		}
	}
	if hy.V1["memory"].Dir != "/sys/fs/cgroup/memory" || hy.V2 == nil || hy.V2.Dir != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid: %+v", hy)
	}

	// In a container without a cgroup namespace the mount shows the
	// container's own cgroup: host paths are cut to it.
	ct := parseCgroupMounts(resFixture(t, "mountinfo_v1_container"))
	m := ct.V1["cpuacct"]
	if m != (cgroupMount{Dir: "/sys/fs/cgroup/cpu,cpuacct", Root: "/docker/3f1c9a2b7d4e"}) || ct.V1["cpu"] != m {
		t.Fatalf("container cpuacct mount %+v", m)
	}
	for path, want := range map[string]string{
		"/docker/3f1c9a2b7d4e":     "/sys/fs/cgroup/cpu,cpuacct",
		"/docker/3f1c9a2b7d4e/sub": "/sys/fs/cgroup/cpu,cpuacct/sub",
		"/docker/3f1c9a2b7d4eX":    "",
		"/other":                   "",
	} {
		if d := m.Path(path); d != want {
			t.Errorf("dir(%q) = %q, want %q", path, d, want)
		}
	}
	if ct.V2 == nil || ct.V2.Dir != "/mnt/odd dir" {
		t.Errorf("escaped mount point: %+v", ct.V2)
	}
}
