package cgstat

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixture writes files (name to contents) into a new directory.
func fixture(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReadV1 reads a cgroup whose v1 controllers are fixture directories,
// as Open would have found them through mountinfo.
func TestReadV1(t *testing.T) {
	for _, tc := range []struct {
		name  string
		blkio map[string]string
		read  uint64
		write uint64
	}{
		{"throttle counters", map[string]string{
			"blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n",
			"blkio.io_service_bytes":                    "8:0 Read 1\n8:0 Write 1\nTotal 2\n",
		}, 4096, 512},
		{"empty throttle counters fall back", map[string]string{
			"blkio.throttle.io_service_bytes_recursive": "Total 0\n",
			"blkio.io_service_bytes":                    "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
		}, 10, 20},
		{"no throttle file falls back", map[string]string{
			"blkio.io_service_bytes": "8:0 Read 7\n8:0 Write 8\nTotal 15\n",
		}, 7, 8},
		{"nothing counted", map[string]string{
			"blkio.throttle.io_service_bytes_recursive": "Total 0\n",
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cgroup{path: "/cairn/x", v1: map[string]string{
				"cpuacct": fixture(t, map[string]string{"cpuacct.usage": "123456789\n"}),
				"memory": fixture(t, map[string]string{
					"memory.usage_in_bytes": "10485760\n",
					"memory.stat":           "inactive_file 1\ntotal_inactive_file 2097152\n",
					"memory.limit_in_bytes": "33554432\n",
					"memory.oom_control":    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
					"cgroup.procs":          "5\n6\n",
				}),
				"pids":  fixture(t, map[string]string{"pids.current": "2\n", "pids.max": "max\n", "cgroup.procs": "5\n6\n"}),
				"blkio": fixture(t, tc.blkio),
			}}
			var s Stats
			if err := c.statsV1(&s); err != nil {
				t.Fatal(err)
			}
			want := Stats{CPUUsage: 123456789, MemoryUsage: 8 << 20, MemoryLimit: 32 << 20,
				BlockRead: tc.read, BlockWrite: tc.write, PidsCurrent: 2}
			if s != want {
				t.Errorf("statsV1 = %+v\nwant %+v", s, want)
			}
			if n, err := c.OOMKills(); n != 2 || err != nil {
				t.Errorf("OOMKills = %d, %v; want 2", n, err)
			}
			if pids, err := c.Pids(); !reflect.DeepEqual(pids, []int{5, 6}) || err != nil {
				t.Errorf("Pids = %v, %v", pids, err)
			}
		})
	}
}

// TestReadV1WithoutOptionalControllers reads a cgroup without blkio and
// pids: those fields stay 0, Pids reads the memory controller's list.
func TestReadV1WithoutOptionalControllers(t *testing.T) {
	c := &Cgroup{path: "/cairn/x", v1: map[string]string{
		"cpuacct": fixture(t, map[string]string{"cpuacct.usage": "1\n"}),
		"memory": fixture(t, map[string]string{
			"memory.usage_in_bytes": "100\n",
			"memory.stat":           "total_inactive_file 400\n",
			"memory.limit_in_bytes": "9223372036854771712\n",
			"cgroup.procs":          "9\n",
		}),
	}}
	var s Stats
	if err := c.statsV1(&s); err != nil {
		t.Fatal(err)
	}
	// Inactive file above usage (read at another moment) leaves usage be.
	if want := (Stats{CPUUsage: 1, MemoryUsage: 100, MemoryLimit: 9223372036854771712}); s != want {
		t.Errorf("statsV1 = %+v\nwant %+v", s, want)
	}
	if pids, err := c.Pids(); !reflect.DeepEqual(pids, []int{9}) || err != nil {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	delete(c.v1, "cpuacct")
	if err := c.statsV1(&s); err == nil {
		t.Error("statsV1 without cpuacct succeeded")
	}
}

func TestReadV2(t *testing.T) {
	dir := fixture(t, map[string]string{
		"cpu.stat":       "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
		"memory.current": "10485760\n",
		"memory.stat":    "anon 1\nfile 2\ninactive_file 1048576\nactive_file 5\n",
		"memory.max":     "max\n",
		"io.stat":        "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
		"pids.current":   "3\n",
		"pids.max":       "100\n",
		"memory.events":  "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
		"cgroup.procs":   "7\n8\n9\n",
	})
	c := &Cgroup{path: "/cairn/x", v2: dir}
	var s Stats
	if err := c.statsV2(&s); err != nil {
		t.Fatal(err)
	}
	// memory.max "max" leaves the limit 0, which Stats replaces by the host's.
	want := Stats{CPUUsage: 2500000, MemoryUsage: 9 << 20, BlockRead: 100, BlockWrite: 200, PidsCurrent: 3, PidsLimit: 100}
	if s != want {
		t.Errorf("statsV2 = %+v\nwant %+v", s, want)
	}
	if n, err := c.OOMKills(); n != 1 || err != nil {
		t.Errorf("OOMKills = %d, %v; want 1", n, err)
	}
	if pids, err := c.Pids(); !reflect.DeepEqual(pids, []int{7, 8, 9}) || err != nil {
		t.Errorf("Pids = %v, %v", pids, err)
	}
}
