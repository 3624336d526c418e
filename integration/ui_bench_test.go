package integration

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
)

// TestUILiveBench measures the timeline page while a thousand events a
// second arrive live (the synthetic capture source at rate=1000): how many
// of them the page applied per second, the main thread's busy share
// (Chromium's Performance.getMetrics TaskDuration over the wall time), the
// frames drawn per second and the frames longer than 50 ms. It asserts no
// duration; it runs only with CAIRN_BENCH=1 and logs its figures
// (docs/benchmarks.md).
func TestUILiveBench(t *testing.T) {
	if os.Getenv("CAIRN_BENCH") != "1" {
		t.Skip("set CAIRN_BENCH=1")
	}
	d := startDaemon(t)
	c := dial(t, d)
	b := newBrowser(t)
	base := "http://" + d.Status.HTTP
	b.do(t, "open the timeline", chromedp.Navigate(base+"/ui/"))
	b.until(t, "live subscription", `document.querySelector('svg.timeline')?.dataset.live === 'ready'`)
	if _, err := chromedp.Call(b.ctx, performance.Enable, performance.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	b.eval(t, `(() => { window.__frames = 0; window.__long = 0; let last = performance.now();
		const f = (now) => { window.__frames++; if (now - last > 50) window.__long++; last = now; requestAnimationFrame(f); };
		requestAnimationFrame(f); return ''; })()`)
	do(t, c, "capture start synthetic rate=1000")
	defer do(t, c, "capture stop synthetic")
	b.until(t, "live events arriving", `+(document.querySelector('svg.timeline').dataset.received || 0) > 1000`)

	type sample struct {
		at             time.Time
		task           float64
		received, long int
		frames         int
	}
	take := func() sample {
		m, err := chromedp.Call(b.ctx, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		s := sample{at: time.Now()}
		for _, x := range m.Metrics {
			if x.Name == "TaskDuration" {
				s.task = x.Value
			}
		}
		s.received, _ = strconv.Atoi(b.eval(t, `document.querySelector('svg.timeline').dataset.received`))
		s.frames, _ = strconv.Atoi(b.eval(t, `String(window.__frames)`))
		s.long, _ = strconv.Atoi(b.eval(t, `String(window.__long)`))
		return s
	}
	for round := range 3 {
		s0 := take()
		// The window is the time 10,000 more events take to arrive.
		b.until(t, "10,000 more events", fmt.Sprintf(`+document.querySelector('svg.timeline').dataset.received >= %d`, s0.received+10000))
		s1 := take()
		wall := s1.at.Sub(s0.at).Seconds()
		t.Logf("round %d: %.0f events/s applied, main thread busy %.1f%%, %.1f frames/s, %d frames over 50 ms, over %.1f s",
			round+1, float64(s1.received-s0.received)/wall, 100*(s1.task-s0.task)/wall, float64(s1.frames-s0.frames)/wall, s1.long-s0.long, wall)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors: %v", errs)
	}
}
