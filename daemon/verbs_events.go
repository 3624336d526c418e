package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// eventSelection is what events and tail were asked for.
type eventSelection struct {
	streams []string
	query   journal.Query
	where   *filter.Filter
	limit   int64
	count   bool
}

func (s *Server) selection(r engines.Request) (*eventSelection, error) {
	st := r.Statement()
	sel := &eventSelection{streams: []string{journal.Audit}}
	if w, ok := st.Opt("stream"); ok {
		switch {
		case w.Text == "*":
			sel.streams = s.journal.Names()
		case s.journal.Stream(w.Text) != nil:
			sel.streams = []string{w.Text}
		default:
			return nil, &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: fmt.Sprintf("unknown stream %q; streams are %s, or * for all", w.Text, strings.Join(s.journal.Names(), ", "))}
		}
	}
	now := time.Now()
	if w, ok := st.Opt("since"); ok {
		t, err := w.Time(now)
		if err != nil {
			return nil, &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: err.Error()}
		}
		sel.query.Since = t.UnixNano()
	}
	if w, ok := st.Opt("until"); ok {
		t, err := w.Time(now)
		if err != nil {
			return nil, &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: err.Error()}
		}
		sel.query.Until = t.UnixNano()
	}
	for name, dst := range map[string]*int64{"from": &sel.query.From, "to": &sel.query.To, "limit": &sel.limit} {
		if w, ok := st.Opt(name); ok {
			n, err := w.Int()
			if err != nil || n < 0 {
				return nil, &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: fmt.Sprintf("%s=%s: want a non-negative integer", name, w.Text)}
			}
			*dst = n
		}
	}
	if len(sel.streams) > 1 && (sel.query.From != 0 || sel.query.To != 0) {
		w, _ := st.Opt("stream")
		return nil, &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: "stream=* merges streams by time and takes no from=/to= (seqs belong to one stream); use since=/until="}
	}
	if w, ok := st.Opt("kind"); ok {
		sel.query.Kind = w.Text
	}
	if w, ok := st.Opt("subject"); ok {
		sel.query.Subject = w.Text
	}
	sel.query.Reverse = st.Flags["reverse"]
	sel.count = st.Flags["count"]
	var err error
	if sel.where, err = engines.Where(r.Statement()); err != nil {
		return nil, err
	}
	return sel, nil
}

// runEvents answers every matching stored event, or their count.
func (s *Server) runEvents(ctx context.Context, r engines.Request) error {
	sel, err := s.selection(r)
	if err != nil {
		return err
	}
	f := s.historyFeed(sel)
	defer f.close()
	for {
		raw, err := f.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !sel.count {
			if err := r.Event(raw); err != nil {
				return err
			}
		}
	}
	if sel.count {
		return r.Row(map[string]int64{"count": f.n})
	}
	return nil
}

// historyFeed reads the events a selection picks from the journal, in time
// order across streams, filtered by its where clause and bounded by its
// limit: events, audit and chisels over history read through it.
type historyFeed struct {
	iters []*journal.Iter
	m     *merge
	sel   *eventSelection
	n     int64
	// span is each stream's seqs when the feed began, and at is where it
	// has read to: sysdig.get_read_progress.
	span map[string][2]int64
	at   map[string]int64
	done bool
}

func (s *Server) historyFeed(sel *eventSelection) *historyFeed {
	f := &historyFeed{sel: sel, span: map[string][2]int64{}, at: map[string]int64{}}
	for _, name := range sel.streams {
		st := s.journal.Stream(name)
		f.span[name] = [2]int64{st.FirstSeq(), st.DurableSeq()}
		f.iters = append(f.iters, st.Scan(sel.query))
	}
	f.m = newMerge(f.iters, sel.query.Reverse)
	return f
}

// Progress is how far the feed has read, 0 to 100: the share of each
// stream's events (by seq, as they stood when it began) behind it.
func (f *historyFeed) Progress() float64 {
	if f.done {
		return 100
	}
	var sum float64
	for name, sp := range f.span {
		at, ok := f.at[name]
		switch {
		case sp[1] <= sp[0]:
			sum++
		case ok:
			sum += min(1, max(0, float64(at-sp[0])/float64(sp[1]-sp[0])))
		}
	}
	if len(f.span) == 0 {
		return 100
	}
	return 100 * sum / float64(len(f.span))
}

func (f *historyFeed) Next(ctx context.Context) (*journal.Raw, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for {
		if f.sel.limit > 0 && f.n >= f.sel.limit {
			return nil, io.EOF
		}
		raw, err := f.m.next()
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		if raw == nil {
			f.done = true
			return nil, io.EOF
		}
		f.at[raw.Stream] = raw.Seq
		if f.sel.where != nil {
			ok, err := f.sel.where.Match(ctx, raw)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		f.n++
		return raw, nil
	}
}

func (f *historyFeed) close() {
	for _, it := range f.iters {
		it.Close()
	}
}

// merge walks several iterators in time order (reverse: newest first).
type merge struct {
	iters   []*journal.Iter
	heads   []*journal.Raw
	started bool
	reverse bool
}

func newMerge(iters []*journal.Iter, reverse bool) *merge {
	return &merge{iters: iters, heads: make([]*journal.Raw, len(iters)), reverse: reverse}
}

func (m *merge) advance(i int) error {
	if m.iters[i].Next() {
		m.heads[i] = m.iters[i].Raw()
		return nil
	}
	m.heads[i] = nil
	return m.iters[i].Err()
}

// next returns the next event, or nil at the end. The Raw is valid until
// the following call.
func (m *merge) next() (*journal.Raw, error) {
	if len(m.iters) == 1 {
		if m.iters[0].Next() {
			return m.iters[0].Raw(), nil
		}
		return nil, m.iters[0].Err()
	}
	if !m.started {
		m.started = true
		for i := range m.iters {
			if err := m.advance(i); err != nil {
				return nil, err
			}
		}
	}
	best := -1
	for i, h := range m.heads {
		if h == nil {
			continue
		}
		if best < 0 || (!m.reverse && h.Time() < m.heads[best].Time()) || (m.reverse && h.Time() > m.heads[best].Time()) {
			best = i
		}
	}
	if best < 0 {
		return nil, nil
	}
	out := m.heads[best].Clone()
	if err := m.advance(best); err != nil {
		return nil, err
	}
	return out, nil
}

// startSeq is where a live reader of st starts: at from=, or at the first
// event at or after since= when that is later; 0 (the next event) when
// neither is given.
func startSeq(st *journal.Stream, q journal.Query) int64 {
	from := q.From
	if q.Since != 0 {
		it := st.Scan(journal.Query{Since: q.Since})
		if it.Next() && (from == 0 || it.Raw().Seq > from) {
			from = it.Raw().Seq
		} else if from == 0 {
			from = st.DurableSeq() + 1
		}
		it.Close()
	}
	return from
}

// runTail follows a stream live, catching up first from from= or since=.
func (s *Server) runTail(ctx context.Context, r engines.Request) error {
	sel, err := s.selection(r)
	if err != nil {
		return err
	}
	if len(sel.streams) != 1 {
		w, _ := r.Statement().Opt("stream")
		return &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: "tail follows one stream; use stream=audit or stream=capture"}
	}
	st := s.journal.Stream(sel.streams[0])
	from := startSeq(st, sel.query)
	q := sel.query
	where := &liveWhere{f: sel.where, ctx: ctx}
	match := func(raw *journal.Raw) bool {
		if q.Kind != "" || q.Subject != "" {
			if !journal.MatchQuery(q, raw) {
				return false
			}
		}
		return where.match(raw)
	}
	sub := st.Subscribe(ctx, from, match)
	defer sub.Close()
	// On the socket, the events a commit made visible together go out in
	// one write: they are sent when the subscription would wait.
	burst, _ := r.(*request)
	if burst != nil {
		burst.burst = true
		defer func() { burst.burst = false }()
	}
	var n int64
	for {
		it, ok, err := sub.TryNext()
		if err == nil && !ok {
			if burst != nil {
				if err := burst.flush(nil); err != nil {
					return err
				}
			}
			it, err = sub.Next(ctx)
		}
		if err != nil {
			if errors.Is(err, journal.ErrClosed) {
				return nil
			}
			return err
		}
		if it.Lagged {
			if err := r.Line("lagged: this reader fell behind and is catching up from the journal; nothing is lost"); err != nil {
				return err
			}
			continue
		}
		if err := where.Err(); err != nil {
			return err
		}
		if err := r.Event(it.Raw); err != nil {
			return err
		}
		n++
		if sel.limit > 0 && n >= sel.limit {
			return nil
		}
	}
}

// liveWhere is a request's where clause inside a subscription, whose match
// function can only say yes or no. An evaluation the cost limit or the
// client stopped lets its event through and is kept, so the stream's loop
// ends with that error instead of waiting for a match that never comes.
type liveWhere struct {
	f   *filter.Filter
	ctx context.Context

	mu  sync.Mutex
	err error
}

func (w *liveWhere) match(raw *journal.Raw) bool {
	if w.f == nil {
		return true
	}
	ok, err := w.f.Match(w.ctx, raw)
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
		return true
	}
	return ok
}

// Err is the first evaluation that could not finish, if any.
func (w *liveWhere) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
