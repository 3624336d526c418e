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

// TestUIFirstPaintBench measures the timeline's first paint over a journal
// of a million events (the synthetic capture source fills the capture
// stream): the time from navigation to the first contentful paint and to
// the timeline's chart drawn with the counts (a performance mark the page
// sets), in headless Chromium against the real daemon, three loads. It
// asserts no duration; it runs only with CAIRN_BENCH=1.
func TestUIFirstPaintBench(t *testing.T) {
	if os.Getenv("CAIRN_BENCH") != "1" {
		t.Skip("set CAIRN_BENCH=1")
	}
	d := startDaemon(t)
	c := dial(t, d)
	do(t, c, "capture start synthetic rate=200000")
	do(t, c, "tail stream=capture from=1000000 limit=1") // returns once the millionth event is stored
	do(t, c, "capture stop synthetic")
	b := newBrowser(t)
	base := "http://" + d.Status.HTTP
	for round := range 3 {
		b.do(t, "open the timeline", chromedp.Navigate(base+fmt.Sprintf("/ui/?r=%d", round)))
		b.until(t, "drawn", `performance.getEntriesByName('cairn-timeline-drawn').length > 0 && document.getElementById('tl-status').textContent.includes('events in range')`)
		fcp := b.eval(t, `(performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1).toFixed(0)`)
		drawn := b.eval(t, `performance.getEntriesByName("cairn-timeline-drawn")[0].startTime.toFixed(0)`)
		status := b.eval(t, `document.getElementById('tl-status').textContent`)
		t.Logf("load %d: first contentful paint %s ms, timeline drawn %s ms after navigation (%s)", round+1, fcp, drawn, status)
	}
}
