package logs

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) Verbs() []engines.Verb {
	verbs := []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "logs",
			Access:  dsl.AccessRead,
			Summary: "log records and container output, from the logs stream",
			Help: "logs [CONTAINER] [tag=PATTERN] [since=] [until=] [where 'CEL'] [tail=N] [follow] reads the logs\n" +
				"stream: records that came by forward, syslog, HTTP or tail, and containers' output (tagged\n" +
				"container.NAME). With a CONTAINER alone it answers what the container wrote, each line on the\n" +
				"CLI's stdout or stderr as docker logs does; otherwise one row per record: time, tag, record.\n" +
				"tag= is a Fluentd match pattern (* one part, ** any parts, {a,b}); where sees tag and record.\n\n" +
				"  logs web tail=10\n  logs tag='app.**' where 'record.level == \"error\"' since=1h\n  logs tag='syslog.auth.*' follow",
			Args: []dsl.Arg{{Name: "CONTAINER", Help: "a container's name or id"}},
			Flags: []dsl.Flag{{Name: "follow", Help: "go on with new records"},
				{Name: "timestamps", Help: "prefix each container line with its time (RFC 3339)"}},
			Options: []dsl.Option{{Name: "since", Kind: dsl.Time}, {Name: "until", Kind: dsl.Time},
				{Name: "tag", Meta: "PATTERN", Help: "Fluentd tag pattern"},
				{Name: "tail", Kind: dsl.Int, Meta: "N", Help: "only the last N records"}},
			Where:  true,
			Stream: true,
		}, Run: m.runLogs},
		{Spec: dsl.Spec{
			Verb:    "logs stats",
			Access:  dsl.AccessRead,
			Summary: "the log inputs' counters: records stored, bad input refused by reason",
			Help:    "logs stats answers, for each input (forward, syslog, http), its counters since the daemon\nstarted: records, messages, connections, and bad input (invalid_msgpack, frame_too_large,\nnot_a_map, unparsed, bad_json, …).",
		}, Run: m.runStats},
	}
	verbs = append(verbs, m.tailVerbs()...)
	verbs = append(verbs, m.routeVerbs()...)
	slices.SortFunc(verbs, func(a, b engines.Verb) int { return strings.Compare(a.Verb, b.Verb) })
	return verbs
}

// logRow is one record as `logs` answers it.
type logRow struct {
	Time   string         `json:"time"`
	Tag    string         `json:"tag"`
	Record map[string]any `json:"record"`
}

// rowOf reads a logs-stream event as a record: the logs engine's, or a
// container's output line ({log, source}, as Docker's fluentd driver sends
// it).
func rowOf(ev *journal.Event) logRow {
	tag, _ := ev.Data["tag"].(string)
	t := ev.Time
	if n, ok := ev.Data["time"].(int64); ok {
		t = n
	} else if n, ok := ev.Data["time"].(uint64); ok {
		t = int64(n)
	}
	rec, _ := ev.Data["record"].(map[string]any)
	if rec == nil {
		if line, ok := ev.Data["line"].(string); ok {
			rec = map[string]any{"log": line, "source": ev.Data["stream"]}
			if ev.Container != nil {
				rec["container_id"] = ev.Container.ID
				rec["container_name"] = ev.Container.Name
			}
		}
	}
	return logRow{Time: time.Unix(0, t).UTC().Format(time.RFC3339Nano), Tag: tag, Record: rec}
}

func (m *module) runLogs(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	var q journal.Query
	for _, opt := range []struct {
		name string
		dst  *int64
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if w, ok := st.Opt(opt.name); ok {
			t, err := w.Time(time.Now())
			if err != nil {
				return engines.Errorf(wire.InvalidArgument, w, "%s=%s: %v", opt.name, w.Text, err)
			}
			*opt.dst = t.UnixNano()
		}
	}
	tail := -1
	if w, ok := st.Opt("tail"); ok {
		n, err := strconv.Atoi(w.Text)
		if err != nil || n < 0 {
			return engines.Errorf(wire.InvalidArgument, w, "tail=%s: give a number of records", w.Text)
		}
		tail = n
	}
	var pattern *TagPattern
	if w, ok := st.Opt("tag"); ok {
		p, err := ParseTagPattern(w.Text)
		if err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "tag=%s: %v", w.Text, err)
		}
		pattern = p
	}
	where, err := engines.Where(st)
	if err != nil {
		return err
	}
	// A container: its output only, answered as docker logs does.
	containerID := ""
	follow := st.Flags["follow"]
	var runEnded func() <-chan struct{}
	if w := st.Args["CONTAINER"]; w.Text != "" {
		res, err := engines.Lookup[containerResolver](m.services, ContainersService)
		if err != nil {
			return engines.Errorf(wire.FailedPrecondition, w, "no container runtime: %v", err)
		}
		id, _, err := res.ContainerRef(w.Text)
		if err != nil {
			return engines.Errorf(wire.NotFound, w, "%v", err)
		}
		containerID = id
		q.Kind = "container.log"
		if follow {
			// As docker logs --follow: the follow ends with the
			// container's run. Watched before its state is asked, so
			// an exit in between is not missed.
			ended := m.watchExit(ctx, id)
			running, err := res.ContainerRunning(w.Text)
			if err != nil {
				return engines.Errorf(wire.NotFound, w, "%v", err)
			}
			if !running {
				follow = false
			}
			runEnded = func() <-chan struct{} { return ended }
		}
	}
	asOutput := containerID != "" && pattern == nil && where == nil
	pa, _ := r.(engines.ProcessAnswerer)
	timestamps := st.Flags["timestamps"]
	keep := func(raw *journal.Raw) (*journal.Event, bool, error) {
		if where != nil && !where.MatchRaw(raw) {
			return nil, false, nil
		}
		ev, err := raw.Decode()
		if err != nil {
			return nil, false, err
		}
		if containerID != "" && (ev.Container == nil || ev.Container.ID != containerID) {
			return nil, false, nil
		}
		if pattern != nil {
			tag, _ := ev.Data["tag"].(string)
			if !pattern.Match(tag) {
				return nil, false, nil
			}
		}
		return ev, true, nil
	}
	answer := func(ev *journal.Event) error {
		if asOutput {
			return answerLine(r, pa, ev, timestamps)
		}
		return r.Row(rowOf(ev))
	}
	if runEnded != nil && follow {
		return m.readUntilExit(ctx, q, tail, runEnded(), keep, answer)
	}
	return m.read(ctx, q, tail, follow, keep, answer)
}

// watchExit returns a channel closed when the audit stream records the
// exit of the container whose short id is id. The runtime records an
// exit only once the run's output is stored in the logs stream.
func (m *module) watchExit(ctx context.Context, id string) <-chan struct{} {
	ended := make(chan struct{})
	sub := m.audit.SubscribeKinds(ctx, m.audit.DurableSeq()+1, func(kind string) bool { return kind == "container.exit" }, nil)
	go func() {
		defer sub.Close()
		for {
			item, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if item.Raw == nil {
				continue
			}
			ev, err := item.Raw.Decode()
			if err != nil {
				continue
			}
			if full, _ := ev.Data["id"].(string); strings.HasPrefix(full, id) {
				close(ended)
				return
			}
		}
	}()
	return ended
}

// readUntilExit is read with follow for a container's output, ending
// when its run does (ended): with every record the logs stream held at
// the exit answered.
func (m *module) readUntilExit(ctx context.Context, q journal.Query, tail int, ended <-chan struct{},
	keep func(*journal.Raw) (*journal.Event, bool, error), answer func(*journal.Event) error) error {
	followCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stopAt, lastSeen atomic.Int64
	go func() {
		select {
		case <-ended:
		case <-followCtx.Done():
			return
		}
		s := m.logs.DurableSeq()
		stopAt.Store(s)
		if lastSeen.Load() >= s {
			stop()
		}
	}()
	err := m.readSeen(followCtx, q, tail, true, keep, answer, func(seq int64) bool {
		lastSeen.Store(seq)
		s := stopAt.Load()
		return s > 0 && seq >= s
	})
	if ctx.Err() == nil && followCtx.Err() != nil {
		return nil // the run ended
	}
	return err
}

// read answers what is stored (the last tail of it, when tail >= 0), then,
// with follow, what comes next: a subscription goes on after the last seq
// read, with no gap.
func (m *module) read(ctx context.Context, q journal.Query, tail int, follow bool,
	keep func(*journal.Raw) (*journal.Event, bool, error), answer func(*journal.Event) error) error {
	return m.readSeen(ctx, q, tail, follow, keep, answer, nil)
}

// readSeen is read; done, when given, is told the seq of every item the
// follow sees (matching or not) and ends it by answering true.
func (m *module) readSeen(ctx context.Context, q journal.Query, tail int, follow bool,
	keep func(*journal.Raw) (*journal.Event, bool, error), answer func(*journal.Event) error, done func(seq int64) bool) error {
	last := m.logs.DurableSeq()
	q.To = last
	it := m.logs.Scan(q)
	var ring []*journal.Event
	for it.Next() {
		ev, ok, err := keep(it.Raw())
		if err != nil {
			it.Close()
			return err
		}
		if !ok {
			continue
		}
		if tail >= 0 {
			ring = append(ring, ev)
			if len(ring) > tail {
				ring = ring[1:]
			}
			continue
		}
		if err := answer(ev); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Err(); err != nil {
		it.Close()
		return err
	}
	it.Close()
	for _, ev := range ring {
		if err := answer(ev); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	if done != nil && done(last) {
		return nil
	}
	var kindFilter func(*journal.Raw) bool
	if q.Kind != "" && done == nil {
		kindFilter = func(raw *journal.Raw) bool { k, err := raw.Kind(); return err == nil && k == q.Kind }
	}
	sub := m.logs.Subscribe(ctx, last+1, kindFilter)
	defer sub.Close()
	for {
		item, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if item.Raw == nil {
			continue
		}
		if q.Until != 0 && item.Raw.Time() > q.Until {
			return nil
		}
		if q.Kind != "" {
			if k, err := item.Raw.Kind(); err != nil || k != q.Kind {
				if done != nil && done(item.Raw.Seq) {
					return nil
				}
				continue
			}
		}
		ev, ok, err := keep(item.Raw)
		if err != nil {
			return err
		}
		if ok {
			if err := answer(ev); err != nil {
				return err
			}
		}
		if done != nil && done(item.Raw.Seq) {
			return nil
		}
	}
}

// answerLine answers one line of a container's output: as the process's
// output where the caller can take it (the CLI writes it to its own stdout
// or stderr), else as a line.
func answerLine(r engines.Request, pa engines.ProcessAnswerer, ev *journal.Event, timestamps bool) error {
	line, _ := ev.Data["line"].(string)
	if timestamps {
		line = time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano) + " " + line
	}
	fd := 1
	if s, _ := ev.Data["stream"].(string); s == "stderr" {
		fd = 2
	}
	if p, _ := ev.Data["partial"].(bool); !p {
		line += "\n"
	}
	if pa != nil {
		return pa.Output(fd, line)
	}
	return r.Line(strings.TrimSuffix(line, "\n"))
}

func (m *module) runStats(ctx context.Context, r engines.Request) error {
	for _, row := range m.stats.rows() {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}
