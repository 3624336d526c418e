package cgstat

import (
	"reflect"
	"testing"
)

// The expected strings are what github.com/docker/go-units prints for the
// same numbers (HumanSize, BytesSize, HumanSizeWithPrecision(n, 3)).
func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		size                     float64
		human, bytes, precision3 string
	}{
		{0, "0B", "0B", "0B"},
		{648, "648B", "648B", "648B"},
		{999, "999B", "999B", "999B"},
		{1000, "1kB", "1000B", "1kB"},
		{1023, "1.023kB", "1023B", "1.02kB"},
		{1024, "1.024kB", "1KiB", "1.02kB"},
		{1234, "1.234kB", "1.205KiB", "1.23kB"},
		{1200, "1.2kB", "1.172KiB", "1.2kB"},
		{1572864, "1.573MB", "1.5MiB", "1.57MB"},
		{33554432, "33.55MB", "32MiB", "33.6MB"},
		{999999, "1000kB", "976.6KiB", "1e+03kB"},
		{24684000 * 1024, "25.28GB", "23.54GiB", "25.3GB"},
	} {
		if got := HumanSize(tc.size); got != tc.human {
			t.Errorf("HumanSize(%v) = %q, want %q", tc.size, got, tc.human)
		}
		if got := BytesSize(tc.size); got != tc.bytes {
			t.Errorf("BytesSize(%v) = %q, want %q", tc.size, got, tc.bytes)
		}
		if got := humanSize3(uint64(tc.size)); got != tc.precision3 {
			t.Errorf("humanSize3(%v) = %q, want %q", tc.size, got, tc.precision3)
		}
	}
}

func TestCPUPercent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur Stats
		want      float64
	}{
		{"one of four busy", Stats{CPUUsage: 0, SystemUsage: 0}, Stats{CPUUsage: 1e9, SystemUsage: 4e9, OnlineCPUs: 4}, 100},
		{"idle", Stats{CPUUsage: 5, SystemUsage: 0}, Stats{CPUUsage: 5, SystemUsage: 4e9, OnlineCPUs: 4}, 0},
		{"no system time passed", Stats{CPUUsage: 0, SystemUsage: 9}, Stats{CPUUsage: 10, SystemUsage: 9, OnlineCPUs: 4}, 0},
		{"counter went back", Stats{CPUUsage: 10, SystemUsage: 0}, Stats{CPUUsage: 5, SystemUsage: 9, OnlineCPUs: 4}, 0},
		{"a little", Stats{}, Stats{CPUUsage: 1e6, SystemUsage: 4e9, OnlineCPUs: 2}, 0.05},
	} {
		if got := CPUPercent(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: CPUPercent = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRow(t *testing.T) {
	id := "4f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
	prev := Stats{CPUUsage: 1e9, SystemUsage: 100e9}
	cur := Stats{
		CPUUsage: 1e9 + 1e6, SystemUsage: 104e9, OnlineCPUs: 2,
		MemoryUsage: 1572864, MemoryLimit: 33554432,
		NetRx: 1234, NetTx: 648, BlockRead: 0, BlockWrite: 4096,
		PidsCurrent: 3,
	}
	r := cur.Row(id, "/web", &prev)
	got := r.Columns()
	want := []string{"4f1a2b3c4d5e", "web", "0.05%", "1.5MiB / 32MiB", "4.69%", "1.23kB / 648B", "0B / 4.1kB", "3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Row = %q\nwant  %q", got, want)
	}
	if r.FullID != id || r.Container != "web" || r.Stats != cur {
		t.Errorf("Row raw fields = %q %q %+v", r.FullID, r.Container, r.Stats)
	}
	if first := cur.Row(id, "web", nil); first.CPUPerc != "--" {
		t.Errorf("Row without a previous reading: CPU %% = %q, want --", first.CPUPerc)
	}
	if len(Header) != len(got) {
		t.Errorf("Header has %d columns, a row %d", len(Header), len(got))
	}
	if z := (Stats{}).Row(id, "web", &Stats{}); z.MemPerc != "0.00%" || z.CPUPerc != "0.00%" {
		t.Errorf("zero Row: MEM %% %q CPU %% %q, want 0.00%%", z.MemPerc, z.CPUPerc)
	}
}
