package kv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/cairnhq/cairn/journal"
)

// TestDataDriven runs testdata/*: `run` runs DSL statements through the
// verbs, `range` and `txn` run etcd-shaped requests (etcdops_test.go), `advance d=DURATION` moves the clock and expires due leases,
// `restart` reopens the journal and store, `rebuild` refolds the
// projection and requires it unchanged, `events` lists the journal.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := newEnv(t)
		ctx := context.Background()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "run":
				return e.run(ctx, d.Input)
			case "range":
				return e.etcdRange(ctx, d.Input)
			case "txn":
				return e.etcdTxn(ctx, d.Input)
			case "advance":
				var s string
				d.ScanArgs(t, "d", &s)
				dur, err := time.ParseDuration(s)
				if err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(dur)
				if d.HasArg("noexpire") { // as if the daemon were down
					return "ok"
				}
				if err := e.s.expireDue(ctx); err != nil {
					return "error: " + err.Error()
				}
				return "ok"
			case "restart":
				e.restart()
				return "ok"
			case "rebuild":
				before := e.projection()
				if err := e.j.Stream(journal.Audit).Rebuild(ctx); err != nil {
					t.Fatal(err)
				}
				if diff := diffMaps(before, e.projection()); diff != "" {
					return "rebuild changed the projection:\n" + diff
				}
				return fmt.Sprintf("ok: %d projection keys", len(before))
			case "events":
				var b strings.Builder
				it := e.j.Stream(journal.Audit).Scan(journal.Query{})
				defer it.Close()
				for it.Next() {
					ev, err := it.Raw().Decode()
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&b, "%d %s %q via=%s %v\n", ev.Seq, ev.Kind, ev.Subject, ev.Actor.Via, ev.Data)
				}
				return b.String()
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func diffMaps(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("- %q", k))
		} else if v != w {
			out = append(out, fmt.Sprintf("~ %q", k))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("+ %q", k))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
