package journal

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestDeclaredStreams: a stream declared in Options.Streams is opened
// beside audit and capture, in its own directory, with the behaviour of
// its class, and survives a reopen.
func TestDeclaredStreams(t *testing.T) {
	fs := vfs.NewMem()
	clock := newClock()
	opts := testOptions(fs)
	opts.Now = clock.Now
	opts.Reserve, opts.CaptureReserve = 1<<20, 5<<20
	opts.Streams = []StreamSpec{
		{Name: "logs", Class: CaptureLike, Retention: Retention{MaxAge: time.Minute, Every: 5 * time.Millisecond}},
		{Name: "changes", Class: AuditLike},
	}
	j := mustOpen(t, opts)
	if got, want := j.Names(), []string{Audit, Capture, "changes", "logs"}; !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	logs, changes := j.Stream("logs"), j.Stream("changes")
	if logs == nil || changes == nil {
		t.Fatal("declared streams not opened")
	}
	if logs.Class() != CaptureLike || !logs.noSubjectIndex || logs.reserve != opts.CaptureReserve {
		t.Errorf("logs: class %v, no subject index %v, reserve %d: want capture-like, true, %d", logs.Class(), logs.noSubjectIndex, logs.reserve, opts.CaptureReserve)
	}
	if changes.Class() != AuditLike || changes.noSubjectIndex || changes.reserve != opts.Reserve {
		t.Errorf("changes: class %v, no subject index %v, reserve %d: want audit-like, false, %d", changes.Class(), changes.noSubjectIndex, changes.reserve, opts.Reserve)
	}
	if _, err := fs.Stat("/data/logs"); err != nil {
		t.Errorf("logs directory: %v", err)
	}

	// The retention loop prunes logs by its own retention (capture has
	// none here) and leaves a checkpoint: wait for it as a subscriber.
	sub := logs.Subscribe(t.Context(), 11, nil)
	defer sub.Close()
	for range 10 {
		mustAppend(t, logs, body("logs.record", "container.web", nil))
		mustAppend(t, j.Stream(Capture), body("capture.exec", "pid/1", nil))
		mustAppend(t, changes, body("changes.note", "x", nil))
	}
	clock.Advance(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	it, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("no checkpoint in logs: %v", err)
	}
	if k, _ := it.Raw.Kind(); k != CheckpointKind || it.Raw.Seq != 11 {
		t.Fatalf("logs seq %d is %q, want the checkpoint at 11", it.Raw.Seq, k)
	}
	checkpoint(t, logs, 11, 1, 10, "age")
	if n, err := changes.Prune(context.Background(), clock.Now()); n != 0 || err != nil {
		t.Fatalf("an audit-like stream is never pruned: %d %v", n, err)
	}
	if first := j.Stream(Capture).FirstSeq(); first != 1 {
		t.Fatalf("capture pruned by logs' retention: first %d", first)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = mustOpen(t, opts)
	defer j.Close()
	if got := j.Stream("changes").DurableSeq(); got != 10 {
		t.Fatalf("changes after reopen: last seq %d, want 10", got)
	}
	if rep, err := j.Stream("logs").Verify(context.Background()); err != nil || rep.BadSeq != 0 || rep.First != 11 {
		t.Fatalf("logs after reopen: %+v %v", rep, err)
	}
}

func TestDeclaredStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		streams []StreamSpec
		engines map[string][]Engine
		want    string
	}{
		{"built-in name", []StreamSpec{{Name: Capture, Class: CaptureLike}}, nil, `stream "capture" declared twice`},
		{"twice", []StreamSpec{{Name: "logs", Class: CaptureLike}, {Name: "logs", Class: CaptureLike}}, nil, `stream "logs" declared twice`},
		{"bad name", []StreamSpec{{Name: "Logs/x", Class: CaptureLike}}, nil, `stream name "Logs/x"`},
		{"audit-like with retention", []StreamSpec{{Name: "notes", Retention: Retention{MaxAge: time.Hour}}}, nil, "never pruned"},
		{"unknown class", []StreamSpec{{Name: "odd", Class: 7}}, nil, "unknown class"},
		{"engines for an undeclared stream", nil, map[string][]Engine{"logs": nil}, `unknown stream "logs"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(vfs.NewMem())
			opts.Streams, opts.Engines = tc.streams, tc.engines
			j, err := Open(opts)
			if err == nil {
				j.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q in it", err, tc.want)
			}
		})
	}
}
