package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditChangeRow is a row of `audit who`.
type auditChangeRow struct {
	Seq    int64   `json:"seq"`
	Time   string  `json:"time"`
	Kind   string  `json:"kind"`
	Actor  string  `json:"actor"`
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// auditGroupRow is a row of `audit`.
type auditGroupRow struct {
	Engine  string `json:"engine"`
	Actor   string `json:"actor"`
	Changes int64  `json:"changes"`
	Kinds   string `json:"kinds"`
	First   string `json:"first"`
	Last    string `json:"last"`
}

func strp(s string) *string { return &s }

func showp(p *string) string {
	if p == nil {
		return "nil"
	}
	return strconv.Quote(*p)
}

// TestAuditWho changes a key through the CLI and reads its history back
// with audit who: before → after and the actor of every change.
func TestAuditWho(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var pids []int
	for _, args := range [][]string{
		{"kv", "put", "app/db/url", "postgres://db1:5432/app"},
		{"kv", "put", "app/db/url", "postgres://db2:5432/app"},
		{"kv", "put", "app/other", "x"},
		{"kv", "put", "app/db/url", "postgres://db3:5432/app"},
		{"kv", "del", "app/db/url"},
	} {
		r := runCLI(t, cliCommand(ctx, d, args...))
		if r.Code != 0 {
			t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
		}
		if args[2] == "app/db/url" {
			pids = append(pids, r.Pid)
		}
	}

	rows := parseNDJSON[auditChangeRow](t, cliOK(t, d, "-o", "json", "audit", "who", "app/db/url"))
	want := []struct {
		kind          string
		before, after *string
	}{
		{"kv.put", nil, strp("postgres://db1:5432/app")},
		{"kv.put", strp("postgres://db1:5432/app"), strp("postgres://db2:5432/app")},
		{"kv.put", strp("postgres://db2:5432/app"), strp("postgres://db3:5432/app")},
		{"kv.delete", strp("postgres://db3:5432/app"), nil},
	}
	if len(rows) != len(want) {
		t.Fatalf("audit who app/db/url: %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Kind != w.kind || showp(r.Before) != showp(w.before) || showp(r.After) != showp(w.after) {
			t.Errorf("row %d: %s %s → %s, want %s %s → %s", i, r.Kind, showp(r.Before), showp(r.After), w.kind, showp(w.before), showp(w.after))
		}
		for _, part := range []string{fmt.Sprintf("pid:%d", pids[i]), fmt.Sprintf("uid:%d", os.Getuid()), "via:socket"} {
			if !strings.Contains(r.Actor, part) {
				t.Errorf("row %d: actor %q lacks %q (the CLI that made the change)", i, r.Actor, part)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			t.Errorf("row %d: time %q: %v", i, r.Time, err)
		}
		if i > 0 && r.Seq <= rows[i-1].Seq {
			t.Errorf("row %d: seq %d after %d, want oldest first", i, r.Seq, rows[i-1].Seq)
		}
	}

	// The table shows the same, one change a line.
	out := cliOK(t, d, "audit", "who", "app/db/url")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[0], "BEFORE") || !strings.Contains(lines[0], "AFTER") ||
		!strings.Contains(lines[2], "postgres://db1:5432/app  postgres://db2:5432/app") {
		t.Errorf("cairn audit who app/db/url printed:\n%s", out)
	}

	c := dial(t, d)
	// Filters as events has them: a window starting mid-history still
	// finds the value before, and reverse/limit take the newest.
	res := do(t, c, fmt.Sprintf("audit who app/db/url from=%d", rows[2].Seq))
	if len(res.Rows) != 2 {
		t.Fatalf("audit who from=%d: %d rows, want 2", rows[2].Seq, len(res.Rows))
	}
	var mid auditChangeRow
	if err := json.Unmarshal(res.Rows[0], &mid); err != nil || showp(mid.Before) != showp(strp("postgres://db2:5432/app")) {
		t.Errorf("audit who from=%d: first row %s, want before db2", rows[2].Seq, res.Rows[0])
	}
	res = do(t, c, "audit who app/db/url reverse limit=1")
	if len(res.Rows) != 1 || !strings.Contains(string(res.Rows[0]), `"kind":"kv.delete"`) {
		t.Errorf("audit who reverse limit=1: %s, want the delete", res.Rows)
	}
	res = do(t, c, "audit who app/db/url kind=kv.put where 'data.value.contains(\"db3\")'")
	if len(res.Rows) != 1 || !strings.Contains(string(res.Rows[0]), `"after":"postgres://db3:5432/app"`) {
		t.Errorf("audit who with kind= and where: %s", res.Rows)
	}

	// Changes made under another subject count: a txn's second key, a
	// prefix delete.
	do(t, c, `kv txn if 'version("app/lock") = "0"' then 'put app/lock me' 'put app/db/url postgres://db4:5432/app'`)
	do(t, c, "kv del app/ prefix")
	// Other events about the subject show their data.
	emit(t, c, "emit app.note app/db/url note=migrated")
	res = do(t, c, "audit who app/db/url from=7")
	var tail []auditChangeRow
	for _, raw := range res.Rows {
		var r auditChangeRow
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		tail = append(tail, r)
	}
	if len(tail) != 3 ||
		tail[0].Kind != "kv.txn" || showp(tail[0].Before) != "nil" || showp(tail[0].After) != `"postgres://db4:5432/app"` ||
		tail[1].Kind != "kv.delete" || showp(tail[1].Before) != `"postgres://db4:5432/app"` || showp(tail[1].After) != "nil" ||
		tail[2].Kind != "app.note" || showp(tail[2].After) != `"{\"note\":\"migrated\"}"` {
		t.Errorf("audit who app/db/url after a txn, a prefix delete and a note: %s", res.Rows)
	}

	// A lease's revoke deletes its keys under the lease's subject: asked
	// about the key it is a delete with a before, asked about the lease it
	// shows its data.
	grant := do(t, c, "lease grant 600")
	var lease struct {
		ID string `json:"id"`
	}
	if len(grant.Rows) != 1 || json.Unmarshal(grant.Rows[0], &lease) != nil || lease.ID == "" {
		t.Fatalf("lease grant 600: %s", grant.Rows)
	}
	do(t, c, "kv put svc/a 10.0.0.1 lease="+lease.ID)
	do(t, c, "lease revoke "+lease.ID)
	res = do(t, c, "audit who svc/a")
	if len(res.Rows) != 2 || !strings.Contains(string(res.Rows[1]), `"kind":"lease.revoke"`) ||
		!strings.Contains(string(res.Rows[1]), `"before":"10.0.0.1","after":null`) {
		t.Errorf("audit who svc/a after a lease revoke: %s", res.Rows)
	}
	res = do(t, c, "audit who "+lease.ID)
	if len(res.Rows) != 2 || !strings.Contains(string(res.Rows[0]), `"kind":"lease.grant"`) ||
		!strings.Contains(string(res.Rows[1]), `"kind":"lease.revoke"`) || !strings.Contains(string(res.Rows[1]), "svc/a") {
		t.Errorf("audit who %s (the lease): %s", lease.ID, res.Rows)
	}

	// A subject with no history answers no rows; a missing one is a usage error.
	if res := do(t, c, "audit who no/such/key"); len(res.Rows) != 0 {
		t.Errorf("audit who no/such/key: %s", res.Rows)
	}
	if _, _, code := cli(t, d, "audit", "who"); code != 2 {
		t.Errorf("cairn audit who (no subject): exit %d, want 2", code)
	}
}

// TestAuditSince summarizes recent changes by engine and actor.
func TestAuditSince(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	for i := range 3 {
		cliOK(t, d, "kv", "put", fmt.Sprintf("app/k%d", i), "v")
	}
	cliOK(t, d, "kv", "del", "app/k0")
	cliOK(t, d, "emit", "release_notes.note", "web", "version=2")
	c := dial(t, d)
	emit(t, c, "emit release_notes.note web version=3")

	res := do(t, c, "audit since=1m")
	groups := map[string]auditGroupRow{}
	for _, raw := range res.Rows {
		var g auditGroupRow
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		groups[g.Engine+" "+g.Actor] = g
		if _, err := time.Parse(time.RFC3339Nano, g.First); err != nil || g.First > g.Last {
			t.Errorf("group %+v: first/last are not RFC 3339 in order", g)
		}
		if strings.Contains(g.Actor, "pid:") {
			t.Errorf("group %+v: groups are by actor, not by process", g)
		}
	}
	uid := fmt.Sprintf("uid:%d", os.Getuid())
	find := func(engine, comm string) auditGroupRow {
		t.Helper()
		for _, g := range groups {
			if g.Engine == engine && strings.Contains(g.Actor, uid) && strings.Contains(g.Actor, "via:socket") && strings.Contains(g.Actor, "comm:"+comm) {
				return g
			}
		}
		t.Fatalf("audit since=1m has no %s group for %s comm %s: %s", engine, uid, comm, res.Rows)
		return auditGroupRow{}
	}
	if g := find("kv", "cairn"); g.Changes != 4 || g.Kinds != "kv.delete,kv.put" {
		t.Errorf("kv group of the CLI: %+v, want 4 changes of kv.delete,kv.put", g)
	}
	if g := find("release_notes", "cairn"); g.Changes != 1 || g.Kinds != "release_notes.note" {
		t.Errorf("release_notes group of the CLI: %+v, want 1 release_notes.note", g)
	}
	// The test process itself is another actor (another command).
	self := find("release_notes", commOf(os.Args[0]))
	if self.Changes != 1 {
		t.Errorf("release_notes group of the test process: %+v, want 1", self)
	}
	// The same selection as events: kind= narrows it, and a window
	// in the future is empty.
	res = do(t, c, "audit since=1m kind=kv.*")
	if len(res.Rows) != 1 || !strings.Contains(string(res.Rows[0]), `"engine":"kv"`) {
		t.Errorf("audit since=1m kind=kv.*: %s, want the kv group only", res.Rows)
	}
	if res := do(t, c, "audit since=2099-01-01T00:00:00Z"); len(res.Rows) != 0 {
		t.Errorf("audit since a future time: %s", res.Rows)
	}
	out := cliOK(t, d, "audit", "since=1m")
	if !strings.HasPrefix(out, "ENGINE") || !strings.Contains(out, "CHANGES") || !strings.Contains(out, "kv.delete,kv.put") {
		t.Errorf("cairn audit since=1m printed:\n%s", out)
	}
}
