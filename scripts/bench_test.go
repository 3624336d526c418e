package scripts

import (
	"context"
	"testing"
)

// BenchmarkChiselCount is the target: a chisel with one
// request_field and a table increment, over history (≥ 300k events/s).
func BenchmarkChiselCount(b *testing.B) {
	raws := kvEvents(b, 100_000)
	lib := NewLibrary(Options{})
	c, err := lib.LoadSource("./count.lua", `description = "count by user"
		local f
		local counts = {}
		function on_init() f = chisel.request_field("actor.user") return true end
		function on_event()
			local k = evt.field(f)
			counts[k] = (counts[k] or 0) + 1
		end`)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if err := c.Run(context.Background(), &sliceFeed{raws: raws}, RunOptions{}); err != nil {
			b.Fatal(err)
		}
		n += len(raws)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTopKinds runs the built-in topkinds (chisel.exec of
// table_generator) over history.
func BenchmarkTopKinds(b *testing.B) {
	raws := kvEvents(b, 100_000)
	c, err := NewLibrary(Options{}).Load("topkinds")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		if err := c.Run(context.Background(), &sliceFeed{raws: raws}, RunOptions{}); err != nil {
			b.Fatal(err)
		}
		n += len(raws)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
