package cgstat

import (
	"reflect"
	"testing"
)

func TestKeyed(t *testing.T) {
	memStat := []byte("cache 10416128\nrss 4931584\ninactive_file 61440\ntotal_inactive_file 53727232\n")
	for _, tc := range []struct {
		name, key string
		b         []byte
		want      uint64
		ok        bool
	}{
		{"v1 hierarchical", "total_inactive_file", memStat, 53727232, true},
		{"prefix is no match", "inactive_file", memStat, 61440, true},
		{"missing", "total_active_file", memStat, 0, false},
		{"oom_control", "oom_kill", []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3, true},
		{"memory.events", "oom_kill", []byte("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"), 2, true},
		{"cpu.stat", "usage_usec", []byte("usage_usec 1234567\nuser_usec 1000000\n"), 1234567, true},
		{"no trailing newline", "rss", []byte("cache 1\nrss 7"), 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := keyed(tc.b, tc.key)
			if got != tc.want || ok != tc.ok {
				t.Errorf("keyed(%q) = %d, %v; want %d, %v", tc.key, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"max\n", 0, false},
		{"33554432\n", 33554432, false},
		{"100", 100, false},
		{"lots", 0, true},
	} {
		got, err := parseLimit([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseLimit(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseBlkioV1(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          string
		read, write uint64
		devices     bool
	}{
		{"empty counters", "Total 0\n", 0, 0, false},
		{"two devices", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\n" +
			"8:16 Read 1000\n8:16 Write 24\nTotal 13312\n", 5096, 8216, true},
		{"lower-case op", "253:0 read 10\n253:0 write 20\n", 10, 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := parseBlkioV1([]byte(tc.in))
			if err != nil || r != tc.read || w != tc.write {
				t.Errorf("parseBlkioV1 = %d, %d, %v; want %d, %d", r, w, err, tc.read, tc.write)
			}
			if got := hasDevices([]byte(tc.in)); got != tc.devices {
				t.Errorf("hasDevices = %v, want %v", got, tc.devices)
			}
		})
	}
	if _, _, err := parseBlkioV1([]byte("8:0 Read x\n")); err == nil {
		t.Error("parseBlkioV1 accepted a non-number")
	}
}

func TestParseIOStatV2(t *testing.T) {
	in := "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n253:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n"
	r, w, err := parseIOStatV2([]byte(in))
	if err != nil || r != 1025 || w != 2050 {
		t.Errorf("parseIOStatV2 = %d, %d, %v; want 1025, 2050", r, w, err)
	}
}

func TestParseProcStat(t *testing.T) {
	in := "cpu  100 5 50 1000 10 1 2 7 0 0\ncpu0 50 2 25 500 5 1 1 3 0 0\ncpu1 50 3 25 500 5 0 1 4 0 0\n" +
		"intr 1 2 3\nctxt 99\nbtime 1764921600\nprocesses 10\n"
	got, err := parseProcStat([]byte(in))
	want := procStat{SystemNanos: 1168 * 1e7, OnlineCPUs: 2, BootTime: 1764921600}
	if err != nil || got != want {
		t.Errorf("parseProcStat = %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseProcStat([]byte("intr 1\n")); err == nil {
		t.Error("parseProcStat accepted a file without a cpu line")
	}
}

func TestParseMemTotal(t *testing.T) {
	got, err := parseMemTotal([]byte("MemTotal:       24684000 kB\nMemFree:        23800000 kB\n"))
	if err != nil || got != 24684000*1024 {
		t.Errorf("parseMemTotal = %d, %v", got, err)
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0:    1234      12    0    0    0     0          0         0      648       8    0    0    0     0       0          0
  eth1:1000 1 0 0 0 0 0 0 2000 2 0 0 0 0 0 0
`
	rx, tx, err := parseNetDev([]byte(in))
	if err != nil || rx != 2234 || tx != 2648 {
		t.Errorf("parseNetDev = %d, %d, %v; want 2234, 2648", rx, tx, err)
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids([]byte("12\n345\n"))
	if err != nil || !reflect.DeepEqual(got, []int{12, 345}) {
		t.Errorf("parsePids = %v, %v", got, err)
	}
	if got, err := parsePids(nil); err != nil || got != nil {
		t.Errorf("parsePids(empty) = %v, %v", got, err)
	}
}

func TestParseV1Mounts(t *testing.T) {
	in := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net\040cls rw,relatime - cgroup cgroup rw,net_cls,net_prio
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	m := parseV1Mounts([]byte(in))
	want := map[string]cgroupMount{
		"cpu":      {Dir: "/sys/fs/cgroup/cpu", Root: "/"},
		"cpuacct":  {Dir: "/sys/fs/cgroup/cpuacct", Root: "/"},
		"memory":   {Dir: "/sys/fs/cgroup/memory", Root: "/docker/abc"},
		"net_cls":  {Dir: "/sys/fs/cgroup/net cls", Root: "/"},
		"net_prio": {Dir: "/sys/fs/cgroup/net cls", Root: "/"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("parseV1Mounts = %v\nwant %v", m, want)
	}
	for _, tc := range []struct {
		mount cgroupMount
		path  string
		want  string
	}{
		{want["cpu"], "/cairn/abc", "/sys/fs/cgroup/cpu/cairn/abc"},
		{want["memory"], "/docker/abc/cairn/x", "/sys/fs/cgroup/memory/cairn/x"},
		{want["memory"], "/docker/abcd", ""},
		{want["memory"], "/cairn/x", ""},
	} {
		if got := tc.mount.Path(tc.path); got != tc.want {
			t.Errorf("%+v.Path(%q) = %q, want %q", tc.mount, tc.path, got, tc.want)
		}
	}
}
