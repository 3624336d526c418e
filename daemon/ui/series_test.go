package ui

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// TestBuildSeries: samples of one kind become one series per subject, a
// point per step: the mean of the step's values (avg), or their sum over
// the step's seconds (rate: a CPU delta becomes cores); the series with
// the largest mean come first, at most top; other kinds and events the
// filter refuses are left out.
func TestBuildSeries(t *testing.T) {
	j, now := testJournal(t)
	st := j.Stream(journal.Capture)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	put := func(at time.Duration, kind, subject string, data map[string]any) {
		now.Store(base.Add(at).UnixNano())
		if _, err := st.Append(context.Background(), &journal.Body{Kind: kind, Subject: subject, Actor: journal.SystemActor(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	// pid/1: two samples in the first 10 s step, one in the second;
	// pid/2 smaller; pid/3 smallest; an exec that is not a sample.
	put(1*time.Second, "capture.sample", "pid/1", map[string]any{"rss": int64(100), "cpu_delta_s": 2.0})
	put(6*time.Second, "capture.sample", "pid/1", map[string]any{"rss": int64(300), "cpu_delta_s": 3.0})
	put(7*time.Second, "capture.sample", "pid/2", map[string]any{"rss": int64(50), "cpu_delta_s": 1.0})
	put(8*time.Second, "capture.exec", "pid/1", map[string]any{"rss": int64(9999)})
	put(9*time.Second, "capture.sample", "pid/3", map[string]any{"rss": int64(10)})
	put(12*time.Second, "capture.sample", "pid/1", map[string]any{"rss": int64(500), "cpu_delta_s": 5.0})
	q := SeriesQuery{Kind: "capture.sample", Field: "data.rss", Since: base.UnixNano(), Until: base.Add(20*time.Second - 1).UnixNano(), Step: int64(10 * time.Second), Top: 2}
	a, err := BuildSeries(context.Background(), st, q)
	if err != nil {
		t.Fatal(err)
	}
	ms := float64(base.UnixMilli())
	if a.Step != 10000 || len(a.Series) != 2 || a.Series[0].Name != "pid/1" || a.Series[1].Name != "pid/2" {
		t.Fatalf("%+v, want pid/1 then pid/2 (top 2), step 10 s", a)
	}
	want := [][2]float64{{ms, 200}, {ms + 10000, 500}}
	if got := a.Series[0].Points; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("pid/1 avg points %v, want %v", got, want)
	}
	q.Field, q.Rate, q.Top = "data.cpu_delta_s", true, 0
	if a, err = BuildSeries(context.Background(), st, q); err != nil {
		t.Fatal(err)
	}
	if got := a.Series[0].Points; a.Series[0].Name != "pid/1" || got[0][1] != 0.5 || got[1][1] != 0.5 {
		t.Fatalf("pid/1 rate points %v, want 0.5 cores in each step ((2+3)/10 s, 5/10 s)", got)
	}
	if len(a.Series) != 2 {
		t.Fatalf("%d series, want 2 (pid/3 has no cpu_delta_s)", len(a.Series))
	}
	q.Where, _ = filter.Compile(`subject == "pid/2"`)
	if a, err = BuildSeries(context.Background(), st, q); err != nil || len(a.Series) != 1 || a.Series[0].Name != "pid/2" {
		t.Fatalf("filtered: %+v %v, want pid/2 alone", a, err)
	}
	if _, err := BuildSeries(context.Background(), st, SeriesQuery{Kind: "capture.sample", Field: "nosuch", Since: q.Since, Until: q.Until, Step: q.Step}); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}
