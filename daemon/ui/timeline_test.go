package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// testJournal opens a journal in a temporary directory with a clock the
// test moves.
func testJournal(t testing.TB) (*journal.Journal, *atomic.Int64) {
	t.Helper()
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	j, err := journal.Open(journal.Options{
		Dir:      t.TempDir(),
		Node:     "test",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return time.Unix(0, now.Load()) },
		DiskFree: func(string) (uint64, error) { return math.MaxUint64, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, &now
}

func appendAt(t testing.TB, st *journal.Stream, now *atomic.Int64, at time.Duration, kind, subject string) {
	t.Helper()
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	now.Store(base + int64(at))
	if _, err := st.Append(context.Background(), &journal.Body{Kind: kind, Subject: subject, Actor: journal.SystemActor(), Data: map[string]any{"v": subject}}); err != nil {
		t.Fatal(err)
	}
}

// TestBuildTimeline: the counts of a capture stream found from the time
// index alone equal the counts of reading it, bucket by bucket; an audit
// stream is counted by kind; the newest events come newest first, merged
// across streams, at most limit; a filter counts only what it matches.
func TestBuildTimeline(t *testing.T) {
	j, now := testJournal(t)
	audit, capture := j.Stream(journal.Audit), j.Stream(journal.Capture)
	for i := range 100 {
		appendAt(t, capture, now, time.Duration(i)*7*time.Second, "capture.sample", "pid/1")
		if i%10 == 0 {
			appendAt(t, audit, now, time.Duration(i)*7*time.Second+time.Second, "kv.put", "k")
		}
	}
	appendAt(t, audit, now, 650*time.Second, "infra.create", "ws/a")
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	q := TimelineQuery{Since: base.UnixNano(), Until: base.Add(700*time.Second - 1).UnixNano(), Buckets: 7, Limit: 3}
	tl, err := BuildTimeline(context.Background(), []*journal.Stream{audit, capture}, q)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Step != 100000 {
		t.Errorf("step %v ms, want 100000", tl.Step)
	}
	a, c := tl.Streams[0], tl.Streams[1]
	if c.Scanned || c.Kinds != nil || c.Total != 100 {
		t.Errorf("capture: scanned %v kinds %v total %d, want the index's count of 100", c.Scanned, c.Kinds, c.Total)
	}
	// Each 100 s bucket holds the samples at multiples of 7 s in it.
	for b := range 7 {
		var want int64
		for i := range 100 {
			if s := i * 7; s >= b*100 && s < (b+1)*100 {
				want++
			}
		}
		if c.Counts[b] != want {
			t.Errorf("capture bucket %d: %d, want %d", b, c.Counts[b], want)
		}
	}
	if !a.Scanned || a.Total != 11 || a.Kinds["kv.put"][0] != 2 || a.Kinds["infra.create"][6] != 1 {
		t.Errorf("audit: %+v", a)
	}
	if len(tl.Events) != 3 || !tl.More {
		t.Fatalf("%d events (more %v), want 3 and more", len(tl.Events), tl.More)
	}
	var first struct{ Kind, Stream string }
	json.Unmarshal(tl.Events[0], &first)
	if first.Kind != "capture.sample" || first.Stream != "capture" {
		t.Errorf("newest event %+v, want capture's sample at 693 s", first)
	}

	q.Where, err = filter.Compile(`kind == "kv.put"`)
	if err != nil {
		t.Fatal(err)
	}
	tl, err = BuildTimeline(context.Background(), []*journal.Stream{audit, capture}, q)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Streams[0].Total != 10 || tl.Streams[1].Total != 0 || !tl.Streams[1].Scanned {
		t.Errorf("filtered: audit %d capture %d (scanned %v), want 10 and 0 scanned", tl.Streams[0].Total, tl.Streams[1].Total, tl.Streams[1].Scanned)
	}
}

func TestParseDOT(t *testing.T) {
	g, err := ParseDOT([]string{"digraph {", `  subgraph "root" {`, `    "net_link.br0"`, `    "net_addr.a"`, `    "net_addr.a" -> "net_link.br0"`, "  }", "}"})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 2 || g.Nodes[0] != "net_link.br0" || len(g.Edges) != 1 || g.Edges[0] != [2]string{"net_addr.a", "net_link.br0"} {
		t.Fatalf("%+v", g)
	}
	if _, err := ParseDOT([]string{`"unterminated`}); err == nil {
		t.Fatal("a bad line parsed")
	}
}

// TestRenderSVG: the styled graph laid out: each node filled by its
// state, classed and linked to its history, and the SVG well-formed XML.
func TestRenderSVG(t *testing.T) {
	g := Graph{Nodes: []string{"net_link.br0", "net_addr.a"}, Edges: [][2]string{{"net_addr.a", "net_link.br0"}}}
	svg := RenderSVG(g, map[string]string{"net_link.br0": StateInSync, "net_addr.a": StateDrifted}, func(a string) string { return "ws/" + a }, "#/history?subject=")
	for _, want := range []string{"<svg", `#/history?subject=ws%2Fnet_link.br0`, stateStyle[StateInSync][0], stateStyle[StateDrifted][0], "net_addr.a",
		`id="res-net_link.br0" class="node state-in_sync"`, `id="res-net_addr.a" class="node state-drifted"`, `class="edge"`} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q:\n%s", want, svg)
		}
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	// A name that needs escaping stays text.
	svg = RenderSVG(Graph{Nodes: []string{`file.a<b&"c"`}}, nil, func(a string) string { return a }, "#")
	if !strings.Contains(string(svg), "file.a&lt;b&amp;") {
		t.Errorf("a node name is not escaped:\n%s", svg)
	}
}

// TestLayout: an edge goes at least one layer right (a → b: b right of a,
// as dot with rankdir=LR draws it), boxes of one layer do not overlap,
// and a cycle does not hang the layout.
func TestLayout(t *testing.T) {
	g := Graph{Nodes: []string{"a", "b", "c", "d", "e"}, Edges: [][2]string{{"a", "b"}, {"b", "c"}, {"a", "c"}, {"d", "c"}, {"e", "e"}}}
	at, w, h := layout(g)
	for _, e := range g.Edges[:4] {
		if at[e[1]].x <= at[e[0]].x {
			t.Errorf("%s → %s: %s at x %.0f is not right of %s at %.0f", e[0], e[1], e[1], at[e[1]].x, e[0], at[e[0]].x)
		}
	}
	for i, a := range g.Nodes {
		for _, b := range g.Nodes[i+1:] {
			pa, pb := at[a], at[b]
			if pa.x == pb.x && math.Abs(pa.y-pb.y) < nodeHeight {
				t.Errorf("%s and %s overlap: %+v %+v", a, b, pa, pb)
			}
		}
		if p := at[a]; p.x+p.w > w || p.y+nodeHeight > h {
			t.Errorf("%s outside the drawing %.0f×%.0f: %+v", a, w, h, p)
		}
	}
	cyc := Graph{Nodes: []string{"x", "y"}, Edges: [][2]string{{"x", "y"}, {"y", "x"}}}
	if at, _, _ := layout(cyc); len(at) != 2 {
		t.Errorf("a cycle: %+v", at)
	}
}
