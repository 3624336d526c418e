package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// The audit views answer questions about the journal's changes as rows
// rather than raw events. Their entries sit in coreVerbs, in order.

// auditSummaryVerb is `audit`: what changed, by engine and actor.
func auditSummaryVerb() serverVerb {
	return serverVerb{Spec: dsl.Spec{
		Verb:    "audit",
		Access:  dsl.AccessRead,
		Summary: "summarize what changed, grouped by engine and actor",
		Help: "audit answers one row per engine (the kind's first word) and actor: how many events,\n" +
			"which kinds, the first and the last. Actors are told apart by user, uid, command, how they\n" +
			"came (via) and address, not by pid, so one person's many CLI runs make one row. The\n" +
			"options select events as those of `events` do (stream= defaults to audit).\n\n" +
			"  audit since=1h\n  audit since=2026-11-25T00:00:00Z until=2026-11-26T00:00:00Z kind=kv.*\n" +
			"  audit since=24h where 'actor.uid != 0'",
		Options: summaryOptions(),
		Where:   true,
	}, run: (*Server).runAuditSummary}
}

// auditWhoVerb is `audit who SUBJECT`: one subject's changes.
func auditWhoVerb() serverVerb {
	return serverVerb{Spec: dsl.Spec{
		Verb:    "audit who",
		Access:  dsl.AccessRead,
		Summary: "every change to one subject: actor, time, before and after",
		Help: "audit who SUBJECT answers one row per change to SUBJECT (an exact key, resource or\n" +
			"subject), oldest first: seq, time, kind, actor, and the value before and after. For KV keys\n" +
			"before and after are values (a create has no before, a delete no after), and changes the key\n" +
			"took part in under another subject — a txn's later keys, a range delete, a lease's\n" +
			"expiry — are included; other events show their data as after.\n\n" +
			"  audit who app/db/url\n  audit who app/db/url since=24h where 'actor.via == \"etcd\"'\n" +
			"  audit who web/frontend reverse limit=5",
		Args:    []dsl.Arg{{Name: "SUBJECT", Required: true, Help: "the exact subject, e.g. a key"}},
		Options: whoOptions(),
		Flags:   []dsl.Flag{{Name: "reverse", Help: "newest first"}},
		Where:   true,
	}, run: (*Server).runAuditWho}
}

// summaryOptions are events' filters without limit=, which means nothing
// for a summary.
func summaryOptions() []dsl.Option {
	return slices.DeleteFunc(eventOptions(true), func(o dsl.Option) bool { return o.Name == "limit" })
}

// whoOptions are events' filters without subject=: the subject is the
// positional argument.
func whoOptions() []dsl.Option {
	return slices.DeleteFunc(eventOptions(true), func(o dsl.Option) bool { return o.Name == "subject" })
}

// auditChange is one row of audit who.
type auditChange struct {
	Stream string  `json:"stream,omitempty"` // only with stream=*
	Seq    int64   `json:"seq"`
	Time   string  `json:"time"`
	Kind   string  `json:"kind"`
	Actor  string  `json:"actor"`
	Before *string `json:"before"`
	After  *string `json:"after"`

	t int64
}

// runAuditWho answers every change to one subject, with before → after.
func (s *Server) runAuditWho(ctx context.Context, r engines.Request) error {
	sel, err := s.selection(r)
	if err != nil {
		return err
	}
	subject := r.Statement().Args["SUBJECT"].Text
	var rows []auditChange
	for _, name := range sel.streams {
		got, err := s.subjectChanges(ctx, s.journal.Stream(name), subject, sel)
		if err != nil {
			return err
		}
		rows = append(rows, got...)
	}
	if len(sel.streams) > 1 {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].t < rows[j].t })
	} else {
		for i := range rows {
			rows[i].Stream = ""
		}
	}
	if sel.query.Reverse {
		slices.Reverse(rows)
	}
	for i, row := range rows {
		if sel.limit > 0 && int64(i) >= sel.limit {
			break
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// subjectChanges walks one stream's events about subject forward, in seq
// order, and turns them into rows.
func (s *Server) subjectChanges(ctx context.Context, st *journal.Stream, subject string, sel *eventSelection) ([]auditChange, error) {
	q := sel.query
	q.Reverse = false
	q.Subject = escapeGlob(subject)
	var evs []*journal.Raw
	seen := map[int64]bool{}
	if err := scanAll(ctx, st, q, func(raw *journal.Raw) error {
		ok, err := matchWhere(ctx, sel.where, raw)
		if ok {
			evs = append(evs, raw.Clone())
			seen[raw.Seq] = true
		}
		return err
	}); err != nil {
		return nil, err
	}
	if st.Name() == journal.Audit {
		kindFilter := journal.Query{Kind: q.Kind}
		// The body holds the key as text (CBOR strings are stored as
		// they are), so an event without it is skipped undecoded: etcd
		// clients write most keys through txns.
		needle := []byte(strings.TrimPrefix(subject, "b64:"))
		for _, kind := range engines.MultiSubjectKinds(s.cfg.Modules) {
			kq := q
			kq.Subject, kq.Kind = "", kind
			err := scanAll(ctx, st, kq, func(raw *journal.Raw) error {
				if seen[raw.Seq] || !bytes.Contains(raw.Body(), needle) || !journal.MatchQuery(kindFilter, raw) {
					return nil
				}
				ev, err := raw.Decode()
				if err != nil {
					return fmt.Errorf("%s seq %d: %w", st.Name(), raw.Seq, err)
				}
				if !touches(s.changesOf(ev), subject) {
					return nil
				}
				ok, err := matchWhere(ctx, sel.where, raw)
				if ok {
					evs = append(evs, raw.Clone())
					seen[raw.Seq] = true
				}
				return err
			})
			if err != nil {
				return nil, err
			}
		}
		sort.Slice(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
	}

	// values remembers the key's value at each revision walked, so that a
	// change's before is usually found without another read.
	values := map[int64]*string{}
	var rows []auditChange
	for _, raw := range evs {
		ev, err := raw.Decode()
		if err != nil {
			return nil, fmt.Errorf("%s seq %d: %w", st.Name(), raw.Seq, err)
		}
		base := auditChange{
			Stream: st.Name(), Seq: ev.Seq, t: ev.Time, Kind: ev.Kind,
			Time:  time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano),
			Actor: actorString(ev.Actor, true),
		}
		ops := s.changesOf(ev)
		if !touches(ops, subject) {
			// Not a change of the key (any other event, or a lease's
			// revoke asked about by lease id): its data is what it says.
			if len(ev.Data) > 0 {
				if b, err := json.Marshal(ev.Data); err == nil {
					after := string(b)
					base.After = &after
				}
			}
			rows = append(rows, base)
			continue
		}
		for _, op := range ops {
			if op.Subject != subject {
				continue
			}
			row := base
			row.Before = op.Before
			if op.Before == nil && op.BeforeSeq > 0 {
				before, ok := values[op.BeforeSeq]
				if !ok {
					before = s.valueAt(st, op.BeforeSeq, subject)
				}
				row.Before = before
			}
			row.After = op.After
			values[ev.Seq] = op.After
			rows = append(rows, row)
		}
	}
	return rows, ctx.Err()
}

// valueAt reads the value a key got at seq rev, or nil when that event is
// gone (pruned, unreadable) or did not put the key.
func (s *Server) valueAt(st *journal.Stream, rev int64, subject string) *string {
	it := st.Scan(journal.Query{From: rev, To: rev})
	defer it.Close()
	if !it.Next() {
		return nil
	}
	ev, err := it.Raw().Decode()
	if err != nil {
		return nil
	}
	var v *string
	for _, op := range s.changesOf(ev) {
		if op.Subject == subject {
			v = op.After
		}
	}
	return v
}

// scanAll calls fn for every event q selects in st.
func scanAll(ctx context.Context, st *journal.Stream, q journal.Query, fn func(*journal.Raw) error) error {
	it := st.Scan(q)
	defer it.Close()
	for i := 0; it.Next(); i++ {
		if i&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fn(it.Raw()); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	return nil
}

// escapeGlob makes a name match only itself as a journal glob.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		if c == '*' || c == '?' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// touches reports whether one of changes is of subject.
func touches(changes []engines.Change, subject string) bool {
	for _, c := range changes {
		if c.Subject == subject {
			return true
		}
	}
	return false
}

// changesOf asks the module that writes an event's kind which subjects'
// values the event changes (engines.Explainer); nil when none explains it.
// audit who shows values before → after (a key's); a change whose before
// and after are JSON documents (an infra state record) is left out, and
// its event shows its data as after, as docs/dsl.md says.
func (s *Server) changesOf(ev *journal.Event) []engines.Change {
	ex, _ := engines.Explain(s.cfg.Modules, ev)
	return slices.DeleteFunc(ex.Changes, func(c engines.Change) bool { return c.JSON })
}

// actorString renders an actor as one cell, in the CLI's event style:
// "user:ana uid:1000 pid:4242 comm:cairn via:socket".
func actorString(a journal.Actor, withPID bool) string {
	parts := make([]string, 0, 6)
	if a.User != "" {
		parts = append(parts, "user:"+a.User)
	}
	parts = append(parts, "uid:"+strconv.Itoa(a.UID))
	if withPID && a.PID != 0 {
		parts = append(parts, "pid:"+strconv.Itoa(a.PID))
	}
	if a.Comm != "" {
		parts = append(parts, "comm:"+a.Comm)
	}
	if a.Via != "" {
		parts = append(parts, "via:"+a.Via)
	}
	if a.Addr != "" {
		parts = append(parts, "addr:"+a.Addr)
	}
	return strings.Join(parts, " ")
}

// auditGroup is one row of audit: the changes of one engine by one actor.
type auditGroup struct {
	Engine  string `json:"engine"`
	Actor   string `json:"actor"`
	Changes int64  `json:"changes"`
	Kinds   string `json:"kinds"`
	First   string `json:"first"`
	Last    string `json:"last"`

	kinds       map[string]bool
	first, last int64
}

// runAuditSummary answers what changed in the selection, grouped by engine
// and actor.
func (s *Server) runAuditSummary(ctx context.Context, r engines.Request) error {
	sel, err := s.selection(r)
	if err != nil {
		return err
	}
	f := s.historyFeed(sel)
	defer f.close()
	groups := map[[2]string]*auditGroup{}
	for {
		raw, err := f.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		ev, err := raw.Decode()
		if err != nil {
			return fmt.Errorf("%s seq %d: %w", raw.Stream, raw.Seq, err)
		}
		engine, _, _ := strings.Cut(ev.Kind, ".")
		key := [2]string{engine, actorString(ev.Actor, false)}
		g := groups[key]
		if g == nil {
			g = &auditGroup{Engine: key[0], Actor: key[1], kinds: map[string]bool{}, first: ev.Time}
			groups[key] = g
		}
		g.Changes++
		g.kinds[ev.Kind] = true
		g.first, g.last = min(g.first, ev.Time), max(g.last, ev.Time)
	}
	rows := make([]*auditGroup, 0, len(groups))
	for _, g := range groups {
		kinds := make([]string, 0, len(g.kinds))
		for k := range g.kinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		g.Kinds = strings.Join(kinds, ",")
		g.First = time.Unix(0, g.first).UTC().Format(time.RFC3339Nano)
		g.Last = time.Unix(0, g.last).UTC().Format(time.RFC3339Nano)
		rows = append(rows, g)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Engine != rows[j].Engine {
			return rows[i].Engine < rows[j].Engine
		}
		if rows[i].Changes != rows[j].Changes {
			return rows[i].Changes > rows[j].Changes
		}
		return rows[i].Actor < rows[j].Actor
	})
	for _, g := range rows {
		if err := r.Row(g); err != nil {
			return err
		}
	}
	return nil
}

// matchWhere evaluates an optional where clause for a request.
func matchWhere(ctx context.Context, where *filter.Filter, raw *journal.Raw) (bool, error) {
	if where == nil {
		return true, nil
	}
	return where.Match(ctx, raw)
}
