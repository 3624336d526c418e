package ui

import (
	"context"
	"encoding/json"
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

// TestRenderSVG: Graphviz lays the styled graph out; each node is filled
// by its state and links to its history.
func TestRenderSVG(t *testing.T) {
	g := Graph{Nodes: []string{"net_link.br0", "net_addr.a"}, Edges: [][2]string{{"net_addr.a", "net_link.br0"}}}
	dot := StyledDOT(g, map[string]string{"net_link.br0": StateInSync, "net_addr.a": StateDrifted}, func(a string) string { return "ws/" + a }, "#/history?subject=")
	svg, err := RenderSVG(context.Background(), dot)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", `#/history?subject=ws%2Fnet_link.br0`, stateStyle[StateInSync][0], stateStyle[StateDrifted][0], "net_addr.a"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q:\n%s", want, svg)
		}
	}
}
