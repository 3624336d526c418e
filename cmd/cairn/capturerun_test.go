//go:build !thin

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines/capture"
	"github.com/cairnhq/cairn/journal"
)

// TestCaptureRunParse: capture run's grammar is the verb table's (the
// capture module's spec), and the CLI takes the command and the where
// clause from the parsed statement.
func TestCaptureRunParse(t *testing.T) {
	for _, c := range []struct {
		stmt       string
		where, err string
		args       string
	}{
		{stmt: `capture run -- sh -c "exit 7"`, args: "sh|-c|exit 7"},
		{stmt: `capture run where 'fd.type == "file"' -- make -- x`, where: `fd.type == "file"`, args: "make|--|x"},
		{stmt: `capture run --`, err: "no command"},
		{stmt: `capture run make`, err: `unexpected`},
		{stmt: `capture run where 'a' where 'b' -- x`, err: "where given twice"},
	} {
		stmts, err := dsl.Parse(c.stmt, verbTable())
		var cr captureRun
		if err == nil {
			if !stmts[0].Spec.Client {
				t.Fatalf("%s: the spec does not mark capture run client-side", c.stmt)
			}
			cr, err = captureRunOf(stmts[0])
		}
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: err %v, want %q", c.stmt, err, c.err)
			continue
		}
		if err == nil && (cr.where != c.where || strings.Join(cr.args, "|") != c.args) {
			t.Errorf("%q: %+v", c.stmt, cr)
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
