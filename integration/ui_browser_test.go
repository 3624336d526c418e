package integration

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// screenshotDir is where the browser tests leave their screenshots (not
// committed: .gitignore); docs/ui.md shows copies of some.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CAIRN_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "ui-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Chromium (Debian's chromium) for a test and
// gathers what its pages write to the console as errors.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found, and CI must run the browser tests (.ci/run installs it): %v", err)
		}
		t.Skipf("chromium not found (apt-get install chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error()
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errs = append(b.errs, msg)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs actions, failing the test with what step.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v (console errors so far: %v)", what, err, b.consoleErrors())
	}
}

// until waits for a JavaScript condition to hold (polled on animation
// frames, as the page draws), failing the test after a minute.
func (b *browser) until(t *testing.T, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		var dump string
		dump, _ = chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('main').innerText.slice(0, 1500)`))
		t.Fatalf("%s: %v\npage: %s\nconsole errors: %v", what, err, dump, b.consoleErrors())
	}
}

// submit submits an input's form as a person pressing Enter does (the
// submit event fires; chromedp.Submit's form.submit() skips it).
func submit(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Action[chromedp.Void](func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).form.requestSubmit(), true)`, sel))(ctx, t)
		return chromedp.Void{}, err
	})
}

func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// shoot writes the page at 1280×800 and at 390×844 (a phone) as PNGs.
func (b *browser) shoot(t *testing.T, dir, name string) {
	t.Helper()
	for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
		b.do(t, "viewport", chromedp.EmulateViewport(size[0], size[1]))
		b.eval(t, `(window.scrollTo(0, 0), "")`)
		// Two frames: the page lays out and draws at the new width.
		b.until(t, "redraw", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
		// Readable at this width: the page does not scroll sideways (wide
		// tables scroll in their own box).
		if over := b.eval(t, `String(document.documentElement.scrollWidth - window.innerWidth)`); over != "0" && !strings.HasPrefix(over, "-") {
			t.Errorf("%s at %dx%d: the page is %s px wider than the window", name, size[0], size[1], over)
		}
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, size[0], size[1])), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.do(t, "viewport", chromedp.EmulateViewport(1280, 800))
}

// TestUIBrowser opens the dashboard of a real daemon in headless Chromium:
// the timeline shows events the test writes, live; a CEL filter narrows
// them and a bad one shows its error in place; a kv.put's detail shows
// before → after; the metrics page draws a chart with points (the res
// samples, or PromQL when the metrics engine is linked); the infra page
// draws the graph of an applied configuration; no page writes an error to
// the console. Screenshots of each page go to ui-screenshots/.
func TestUIBrowser(t *testing.T) {
	d := startDaemon(t)
	c := dial(t, d)
	b := newBrowser(t)
	shots := screenshotDir(t)
	base := "http://" + d.Status.HTTP

	// A configuration for the infra page.
	cfg := t.TempDir()
	out := filepath.Join(cfg, "out")
	hcl := fmt.Sprintf(`resource "directory" "out" {
  path = %q
}
resource "file" "hello" {
  path    = "${directory.out.path}/hello.txt"
  content = "hello from the ui test"
}
resource "kv_key" "hash" {
  key   = "ui/hello-sha"
  value = file.hello.sha256
}
`, out)
	if err := os.WriteFile(filepath.Join(cfg, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, c, fmt.Sprintf("infra apply %s workspace=uitest auto-approve", cfg))

	// The timeline, live.
	b.do(t, "open the timeline", chromedp.Navigate(base+"/ui/"))
	b.until(t, "live subscription", `document.querySelector('svg.timeline')?.dataset.live === 'ready'`)
	// No layout shift while live events arrive: sum the layout-shift
	// entries Chromium reports from here on.
	b.eval(t, `(window.__cls = 0, new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__cls += e.value; }).observe({ type: 'layout-shift' }), '')`)
	do(t, c, "kv put ui/color red")
	do(t, c, "kv put ui/color blue")
	emit(t, c, "emit app.note ui/browser from=test")
	b.until(t, "the test's events listed live", `[...document.querySelectorAll('.row:not([hidden])')].filter(r => r.textContent.includes('ui/color')).length === 2 && [...document.querySelectorAll('.row:not([hidden])')].some(r => r.dataset.kind === 'app.note')`)
	b.until(t, "changes drawn as marks", `document.querySelectorAll('svg.timeline rect.mark').length > 0`)
	if cls := b.eval(t, `String(window.__cls)`); cls != "0" {
		t.Errorf("live updates shifted the layout: cumulative layout shift %s, want 0", cls)
	}
	// The observer does see a shift: a block pushed in above the list.
	b.eval(t, `(document.querySelector('.split').before(Object.assign(document.createElement('div'), { id: 'shifter', style: 'height: 120px' })), '')`)
	b.until(t, "a real shift measured", `window.__cls > 0`)
	b.eval(t, `(document.getElementById('shifter').remove(), '')`)
	b.shoot(t, shots, "timeline")

	// A filter narrows; a bad one says where it is wrong.
	b.do(t, "filter", chromedp.SetValue("#filter", `kind == "kv.put" && subject == "ui/color"`), submit("#filter"))
	b.until(t, "filtered to the two puts", `(() => { const rows = [...document.querySelectorAll('.row:not([hidden])')]; return rows.length === 2 && rows.every(r => r.dataset.kind === 'kv.put'); })()`)
	b.do(t, "bad filter", chromedp.SetValue("#filter", `kind == `), submit("#filter"))
	b.until(t, "the filter's error in place", `document.getElementById('filter-error').textContent.includes('^') && document.getElementById('filter').getAttribute('aria-invalid') === 'true'`)
	if msg := b.eval(t, `document.getElementById('filter-error').textContent`); !strings.Contains(msg, "column 8") {
		t.Errorf("filter error %q does not name column 8", msg)
	}
	b.do(t, "filter back", chromedp.SetValue("#filter", `kind == "kv.put" && subject == "ui/color"`), submit("#filter"))
	b.until(t, "filtered again", `document.getElementById('filter').getAttribute('aria-invalid') === null && document.querySelectorAll('.row:not([hidden])').length === 2`)

	// Click the newest put: red → blue.
	b.do(t, "open the put", chromedp.Click(`.row[data-kind="kv.put"]:not([hidden])`))
	b.until(t, "before → after", `(() => { const c = document.querySelector('.change[data-subject="ui/color"]'); return !!c && c.querySelector('.before pre').textContent === 'red' && c.querySelector('.after pre').textContent === 'blue'; })()`)
	b.do(t, "verify", chromedp.Click(`.detail button`))
	b.until(t, "chain verified", `document.querySelector('.verify-result')?.textContent.startsWith('chain intact')`)
	b.shoot(t, shots, "timeline-detail")

	// An infra change's before → after are state records, shown as JSON.
	b.do(t, "infra filter", chromedp.SetValue("#filter", `kind == "infra.create" && subject == "uitest/file.hello"`), submit("#filter"))
	b.until(t, "the file's create", `(() => { const r = [...document.querySelectorAll('.row:not([hidden])')]; return r.length === 1 && r[0].dataset.kind === 'infra.create'; })()`)
	b.do(t, "open the create", chromedp.Click(`.row[data-kind="infra.create"]:not([hidden])`))
	b.until(t, "none → the state record", `(() => { const c = document.querySelector('.detail .change'); return !!c && c.querySelector('.before pre').textContent === '(none)' && c.querySelector('.after pre').textContent.includes('hello.txt') && c.querySelector('.after pre').textContent.includes('"attrs"'); })()`)

	// Metrics: a chart with points. The res samples start only now: their
	// hundreds of events a second would push the timeline's rows the test
	// looks for out of the list's window.
	do(t, c, "capture start res interval=1s")
	b.do(t, "metrics", chromedp.Navigate(base+"/ui/#/metrics?range=15m"))
	b.until(t, "a chart with points", `[...document.querySelectorAll('canvas.chart')].some(c => +c.dataset.points > 0)`)
	b.shoot(t, shots, "metrics")
	b.do(t, "res samples", chromedp.Navigate(base+"/ui/#/metrics?source=res&range=15m"))
	b.until(t, "a chart of the res samples with points", `document.getElementById('main').dataset.source === 'res' && [...document.querySelectorAll('canvas.chart')].some(c => +c.dataset.points > 0)`)
	b.do(t, "metrics", chromedp.Navigate(base+"/ui/#/metrics?range=15m"))
	b.until(t, "a chart with points again", `document.getElementById('main').dataset.source === 'prometheus' && [...document.querySelectorAll('canvas.chart')].some(c => +c.dataset.points > 0)`)

	// Brush: drag across a chart and every chart shows that span, which
	// the URL keeps.
	rect := b.eval(t, `(() => { const c = [...document.querySelectorAll('canvas.chart')].find(c => +c.dataset.points > 0); c.scrollIntoView(); const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height, c.dataset.range].join(' '); })()`)
	var x, y, w, h float64
	var before string
	if _, err := fmt.Sscan(rect, &x, &y, &w, &h, &before); err != nil {
		t.Fatalf("chart rect %q: %v", rect, err)
	}
	b.do(t, "brush",
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x+w*0.4, y+h/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x+w*0.6, y+h/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x+w*0.8, y+h/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x+w*0.8, y+h/2, chromedp.ButtonLeft))
	b.until(t, "zoomed to the brushed span", fmt.Sprintf(`location.hash.includes('since=') && [...document.querySelectorAll('canvas.chart')].every(c => c.dataset.range && c.dataset.range !== %q)`, before))

	// Infrastructure: the applied configuration's graph, in sync.
	b.do(t, "infra", chromedp.Navigate(base+"/ui/#/infra"))
	b.until(t, "the graph", `(() => { const g = document.querySelector('#infra-graph svg'); return !!g && ['directory.out', 'file.hello', 'kv_key.hash'].every(n => g.textContent.includes(n)) && g.querySelectorAll('.state-in_sync').length === 3; })()`)
	b.shoot(t, shots, "infra")
	b.do(t, "history", chromedp.Click(`#infra-graph svg .node a`))
	b.until(t, "a resource's history", `document.querySelectorAll('#history tbody tr').length > 0`)

	// Services: one registered through Consul's API, its TTL check
	// passing.
	if code, body := httpDo(t, "PUT", base+"/v1/agent/service/register", `{"ID":"web-1","Name":"web","Address":"127.0.0.1","Port":8080,"Tags":["v1"],"Check":{"CheckID":"web-ttl","Name":"web alive","TTL":"10m"}}`); code != 200 {
		t.Fatalf("register: %d %s", code, body)
	}
	if code, body := httpDo(t, "PUT", base+"/v1/agent/check/pass/web-ttl", ""); code != 200 {
		t.Fatalf("check pass: %d %s", code, body)
	}
	b.do(t, "services", chromedp.Navigate(base+"/ui/#/services"))
	b.until(t, "the service with its check", `(() => { const r = document.querySelector('#services tbody tr'); return !!r && r.textContent.includes('web-1') && r.textContent.includes('127.0.0.1:8080') && r.querySelector('.badge.ok')?.textContent === 'passing'; })()`)
	b.shoot(t, shots, "services")

	b.do(t, "deployments", chromedp.Navigate(base+"/ui/#/deployments"))
	b.until(t, "deployments drawn", `document.getElementById('main').dataset.page === 'deployments' && document.querySelector('main .note') !== null`)
	b.shoot(t, shots, "deployments")

	// Logs: a record posted after the page opened arrives live; the
	// filter keeps it.
	b.do(t, "logs", chromedp.Navigate(base+"/ui/#/logs?where="+url.QueryEscape(`subject.startsWith("app.")`)))
	b.until(t, "logs following", `document.querySelector('main[data-page="logs"] .legend')?.textContent.includes('following live')`)
	if code, body := httpDo(t, "POST", base+"/logs/app.web", `{"log":"GET /index.html 200"}`); code/100 != 2 {
		t.Fatalf("post a log record: %d %s", code, body)
	}
	b.until(t, "the record, live", `[...document.querySelectorAll('.row.logs:not([hidden])')].some(r => r.textContent.includes('GET /index.html 200'))`)
	b.shoot(t, shots, "logs")

	// Keyboard: from the list, ↓ selects, Enter opens the detail.
	b.do(t, "timeline again", chromedp.Navigate(base+"/ui/#/"))
	b.until(t, "listed", `document.querySelectorAll('.row:not([hidden])').length > 2`)
	b.do(t, "keys", chromedp.Focus(`.list`), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter))
	// (Live events may arrive meanwhile: the selection stays on its event.)
	b.until(t, "an event selected and its detail focused", `(() => { const r = document.querySelector('.row[aria-selected="true"]'), d = document.querySelector('.detail'); return !!r && document.activeElement === d && d.querySelector('h2 .code')?.textContent === r.dataset.kind; })()`)
	// A burst of live events does not push the selected event out of
	// sight (the list is at its top; the rows are drawn only in view).
	selected := b.eval(t, `document.querySelector('.row[aria-selected="true"]').id`)
	received := b.eval(t, `document.querySelector('svg.timeline').dataset.received || '0'`)
	for i := range 40 {
		cliOK(t, d, "emit", "app.burst", fmt.Sprintf("b/%d", i))
	}
	b.until(t, "the burst received", fmt.Sprintf(`+(document.querySelector('svg.timeline').dataset.received || 0) >= %s + 40`, received))
	if got := b.eval(t, `document.querySelector('.row[aria-selected="true"]')?.id || 'none in view'`); got != selected {
		t.Errorf("after 40 live events the selected row is %s, want %s still in view", got, selected)
	}
	// The detail draws the last event asked for, whatever order the
	// answers come in: the first request is held back until the second
	// has been drawn (moving fast through the list asks for several).
	b.eval(t, `(() => {
		window.detailRace = undefined;
		const orig = window.fetch;
		let release;
		const held = new Promise((r) => { release = r; });
		window.fetch = (u, o) => {
			const q = new URL(String(u), location.href).searchParams;
			return q.get('seq') === '1' ? held.then(() => orig(u, o)) : orig(u, o);
		};
		import(new URL('detail.js', location.href).href).then(async ({ renderDetail }) => {
			const box = document.createElement('section');
			const first = renderDetail(box, 'audit', 1);
			const second = await renderDetail(box, 'audit', 2);
			release();
			const firstDrawn = await first;
			window.fetch = orig;
			const dd = [...box.querySelectorAll('dd')].map((d) => d.textContent);
			window.detailRace = JSON.stringify({ firstDrawn, second, seq: dd[2] });
		}).catch((e) => { window.fetch = orig; window.detailRace = JSON.stringify({ error: String(e) }); });
		return '';
	})()`)
	b.until(t, "the detail race settled", `window.detailRace !== undefined`)
	if got, want := b.eval(t, `window.detailRace`), `{"firstDrawn":false,"second":true,"seq":"audit 2"}`; got != want {
		t.Errorf("two details asked in a row, the first answered last: %s, want %s", got, want)
	}
	// Dark, as the system says.
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	b.until(t, "dark background", `getComputedStyle(document.body).backgroundColor === 'rgb(15, 19, 24)'`)
	b.shoot(t, shots, "timeline-dark")

	// Brush on the timeline: a custom range of that span, not live.
	rect = b.eval(t, `(() => { const r = document.querySelector('svg.timeline').getBoundingClientRect(); return [r.left, r.top, r.width, r.height].join(' '); })()`)
	if _, err := fmt.Sscan(rect, &x, &y, &w, &h); err != nil {
		t.Fatalf("timeline rect %q: %v", rect, err)
	}
	b.do(t, "brush the timeline",
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x+w*0.5, y+h/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x+w*0.7, y+h/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x+w*0.9, y+h/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x+w*0.9, y+h/2, chromedp.ButtonLeft))
	b.until(t, "a custom range", `document.getElementById('range').value === 'custom' && location.hash.includes('since=') && !document.getElementById('live').checked`)

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
