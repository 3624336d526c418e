package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/capture"
	"github.com/cairnhq/cairn/journal"
)

func TestParseCaptureRun(t *testing.T) {
	for _, c := range []struct {
		words      []string
		ok         bool
		where, err string
		args       string
	}{
		{words: []string{"kv", "get", "a"}},
		{words: []string{"capture", "start", "proc"}},
		{words: []string{"capture", "run", "--", "sh", "-c", "exit 7"}, ok: true, args: "sh|-c|exit 7"},
		{words: []string{"capture", "run", "where", `fd.type == "file"`, "--", "make", "--", "x"}, ok: true, where: `fd.type == "file"`, args: "make|--|x"},
		{words: []string{"capture", "run", "--"}, ok: true, err: "no command"},
		{words: []string{"capture", "run", "make"}, ok: true, err: `unexpected "make"`},
		{words: []string{"capture", "run", "where", "a", "where", "b", "--", "x"}, ok: true, err: "where given twice"},
	} {
		cr, ok, err := parseCaptureRun(c.words)
		if ok != c.ok || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: ok %v err %v, want ok %v err %q", c.words, ok, err, c.ok, c.err)
			continue
		}
		if err == nil && ok && (cr.where != c.where || strings.Join(cr.args, "|") != c.args) {
			t.Errorf("%q: %+v", c.words, cr)
		}
	}
}

// TestSendTracedBatches checks that events are cut into batches of at most
// MaxIngestBatch encoded bytes, that every event arrives once and in
// order, and that a failed send stops sending but keeps draining.
func TestSendTracedBatches(t *testing.T) {
	pad := strings.Repeat("x", 100<<10)
	const n = 50 // ≈5 MiB: at least three batches
	events := make(chan *journal.Body, n)
	for i := range n {
		events <- &journal.Body{Kind: capture.TraceSyscallKind, Subject: pad, Evt: &journal.Evt{Type: "read", Num: int64(i + 1)}}
	}
	close(events)
	var got []int64
	var batches int
	err := sendTraced(context.Background(), events, func(stmt string) error {
		batches++
		bodies, err := capture.DecodeTraceBatch(strings.TrimPrefix(stmt, "capture ingest events="))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bodies {
			got = append(got, b.Evt.Num)
		}
		return nil
	})
	if err != nil || batches < 3 || len(got) != n {
		t.Fatalf("err %v, %d batches, %d events", err, batches, len(got))
	}
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("event %d is %d", i, v)
		}
	}

	events = make(chan *journal.Body, n)
	for range n {
		events <- &journal.Body{Kind: capture.TraceSyscallKind, Subject: pad}
	}
	close(events)
	calls := 0
	err = sendTraced(context.Background(), events, func(string) error { calls++; return context.Canceled })
	if err != context.Canceled || calls != 1 || len(events) != 0 {
		t.Errorf("after a failure: err %v, %d sends, %d left", err, calls, len(events))
	}
}
