package cgstat

import (
	"testing"
	"time"
)

func TestParsePidStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want pidStat
	}{
		{"shell", "4242 (sh) S 4200 4242 4200 34816 4242 4194304 120 0 0 0 7 3 0 0 20 0 1 0 123456 2654208 200 18446744073709551615 1 1 0 0 0 0 0 0 65538 0 0 0 17 1 0 0 0 0 0",
			pidStat{PID: 4242, PPID: 4200, Comm: "sh", TTY: 34816, Utime: 7, Stime: 3, StartTime: 123456}},
		{"comm with spaces and parens", "77 (a) b (c)) R 1 77 77 0 -1 4194560 0 0 0 0 360000 90000 0 0 20 0 1 0 5 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0",
			pidStat{PID: 77, PPID: 1, Comm: "a) b (c)", Utime: 360000, Stime: 90000, StartTime: 5}},
		{"kernel thread", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 2 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0",
			pidStat{PID: 2, Comm: "kthreadd", Stime: 1, StartTime: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePidStat([]byte(tc.in))
			if err != nil || got != tc.want {
				t.Errorf("parsePidStat = %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "12 sh S 1", "12 (sh) S 1 2 3"} {
		if _, err := parsePidStat([]byte(bad)); err == nil {
			t.Errorf("parsePidStat(%q) accepted it", bad)
		}
	}
}

func TestParseStatusEUID(t *testing.T) {
	got, err := parseStatusEUID([]byte("Name:\tsh\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n"))
	if err != nil || got != 0 {
		t.Errorf("parseStatusEUID = %d, %v; want the effective 0", got, err)
	}
	if _, err := parseStatusEUID([]byte("Name:\tsh\n")); err == nil {
		t.Error("parseStatusEUID accepted a status without Uid")
	}
}

func TestTopColumns(t *testing.T) {
	now := time.Date(2026, 12, 5, 11, 48, 0, 0, time.Local)
	for _, tc := range []struct {
		started time.Time
		want    string
	}{
		{time.Date(2026, 12, 5, 0, 1, 0, 0, time.Local), "00:01"},
		{time.Date(2026, 12, 4, 23, 59, 0, 0, time.Local), "Dec04"},
		{time.Date(2026, 1, 2, 9, 0, 0, 0, time.Local), "Jan02"},
		{time.Date(2025, 12, 31, 23, 0, 0, 0, time.Local), "2025"},
	} {
		if got := stime(tc.started, now); got != tc.want {
			t.Errorf("stime(%v) = %q, want %q", tc.started, got, tc.want)
		}
	}
	for _, tc := range []struct {
		secs uint64
		want string
	}{{0, "00:00:00"}, {61, "00:01:01"}, {3600*23 + 59*60 + 59, "23:59:59"}, {86400*3 + 3661, "3-01:01:01"}} {
		if got := cpuTime(tc.secs); got != tc.want {
			t.Errorf("cpuTime(%d) = %q, want %q", tc.secs, got, tc.want)
		}
	}
	for _, tc := range []struct {
		ticks   uint64
		elapsed float64
		want    uint64
	}{{0, 100, 0}, {50, 10, 5}, {1000, 5, 99}, {10, 0.5, 0}} {
		if got := cpuC(tc.ticks, tc.elapsed); got != tc.want {
			t.Errorf("cpuC(%d, %v) = %d, want %d", tc.ticks, tc.elapsed, got, tc.want)
		}
	}
	for _, tc := range []struct {
		dev  uint64
		want string
	}{{0, "?"}, {34816, "pts/0"}, {34817, "pts/1"}, {1025, "tty1"}, {1088, "ttyS0"}, {5<<8 | 1, "5,1"}} {
		if got := ttyName(tc.dev); got != tc.want {
			t.Errorf("ttyName(%d) = %q, want %q", tc.dev, got, tc.want)
		}
	}
	for _, tc := range []struct {
		cmdline, comm, want string
	}{
		{"sleep\x0030\x00", "sleep", "sleep 30"},
		{"sh\x00-c\x00read _; exec x\x00", "sh", "sh -c read _; exec x"},
		{"", "kworker/0:1", "[kworker/0:1]"},
	} {
		if got := cmd([]byte(tc.cmdline), tc.comm); got != tc.want {
			t.Errorf("cmd(%q) = %q, want %q", tc.cmdline, got, tc.want)
		}
	}
}
