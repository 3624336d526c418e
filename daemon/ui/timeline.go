package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// maxKinds bounds the kinds a stream's counts are broken down by; the
// rest are counted under otherKind.
const (
	maxKinds  = 64
	otherKind = "(other)"
)

// TimelineQuery is what one timeline asks for.
type TimelineQuery struct {
	Since, Until int64 // ns, inclusive
	Buckets      int
	Limit        int // the newest events returned, at most
	Where        *filter.Filter
}

// Timeline is the journal over a time range, aggregated: per stream, the
// count of events in each of Buckets equal slices of the range (and, where
// the stream was read, per kind), plus the newest events. The browser
// never receives more than Limit events, however many the range holds.
type Timeline struct {
	Since   int64             `json:"since"` // unix ms
	Until   int64             `json:"until"` // unix ms
	Step    float64           `json:"step"`  // ms per bucket
	Buckets int               `json:"buckets"`
	Streams []StreamCounts    `json:"streams"`
	Events  []json.RawMessage `json:"events"` // newest first
	// More says the range holds more matching events than Events.
	More bool `json:"more"`
}

// StreamCounts are one stream's counts per bucket.
type StreamCounts struct {
	Name  string `json:"name"`
	Class string `json:"class"`
	Total int64  `json:"total"`
	// Counts are the events in each bucket.
	Counts []int64 `json:"counts"`
	// Kinds break Counts down by kind; absent for an observation stream
	// read without a filter, whose counts come from the time index alone
	// (Scanned false).
	Kinds   map[string][]int64 `json:"kinds,omitempty"`
	Scanned bool               `json:"scanned"`
	// Last is the stream's durable seq the counts stop at: a live reader
	// starting after it (/ui/api/live?from=) misses nothing and repeats
	// nothing.
	Last int64 `json:"last"`
}

// BuildTimeline aggregates streams over q. A change stream (audit-like)
// is read, to count by kind; an observation stream (capture-like) is
// counted from the seqs at the buckets' boundaries, found by binary search
// over time, unless a filter must look at each event.
func BuildTimeline(ctx context.Context, streams []*journal.Stream, q TimelineQuery) (*Timeline, error) {
	if q.Until < q.Since {
		return nil, fmt.Errorf("until is before since")
	}
	if q.Buckets < 1 {
		q.Buckets = 1
	}
	span := q.Until - q.Since + 1
	tl := &Timeline{
		Since: q.Since / 1e6, Until: q.Until / 1e6, Buckets: q.Buckets,
		Step: float64(span) / float64(q.Buckets) / 1e6,
	}
	bound := func(i int) int64 { return q.Since + int64(float64(span)*float64(i)/float64(q.Buckets)) }
	bucketOf := func(t int64) int {
		b := int(float64(t-q.Since) * float64(q.Buckets) / float64(span))
		return min(max(b, 0), q.Buckets-1)
	}
	type newest struct {
		t   int64
		raw json.RawMessage
	}
	var recent []newest
	for _, st := range streams {
		last := st.DurableSeq()
		sc := StreamCounts{Name: st.Name(), Class: st.Class().String(), Counts: make([]int64, q.Buckets), Last: last}
		if last == 0 {
			// Nothing written yet (a To of 0 would leave the reads open).
			sc.Scanned, sc.Kinds = st.Class() == journal.AuditLike || q.Where != nil, map[string][]int64{}
			tl.Streams = append(tl.Streams, sc)
			continue
		}
		if q.Where == nil && st.Class() == journal.CaptureLike {
			times := make([]int64, q.Buckets+1)
			for i := range times {
				times[i] = bound(i)
			}
			seqs, err := st.SeqsAt(times)
			if err != nil {
				return nil, fmt.Errorf("count %s: %w", st.Name(), err)
			}
			for i := range seqs {
				seqs[i] = min(seqs[i], last+1)
			}
			for i := range q.Buckets {
				sc.Counts[i] = seqs[i+1] - seqs[i]
				sc.Total += sc.Counts[i]
			}
		} else {
			sc.Scanned, sc.Kinds = true, map[string][]int64{}
			it := st.Scan(journal.Query{Since: q.Since, Until: q.Until, To: last})
			for n := 0; it.Next(); n++ {
				if n&4095 == 0 && ctx.Err() != nil {
					it.Close()
					return nil, ctx.Err()
				}
				raw := it.Raw()
				if q.Where != nil {
					ok, err := q.Where.Match(ctx, raw)
					if err != nil {
						it.Close()
						return nil, err
					}
					if !ok {
						continue
					}
				}
				b := bucketOf(raw.Time())
				sc.Counts[b]++
				sc.Total++
				kind, err := raw.Kind()
				if err != nil {
					kind = otherKind
				}
				k := sc.Kinds[kind]
				if k == nil {
					if len(sc.Kinds) >= maxKinds {
						kind = otherKind
						k = sc.Kinds[kind]
					}
					if k == nil {
						k = make([]int64, q.Buckets)
						sc.Kinds[kind] = k
					}
				}
				k[b]++
			}
			if err := it.Close(); err != nil {
				return nil, fmt.Errorf("read %s: %w", st.Name(), err)
			}
		}
		tl.Streams = append(tl.Streams, sc)
		if q.Limit == 0 {
			continue
		}
		// The newest events: read backwards from the range's end.
		it := st.Scan(journal.Query{Since: q.Since, Until: q.Until, To: last, Reverse: true})
		got := 0
		for n := 0; it.Next(); n++ {
			if n&4095 == 0 && ctx.Err() != nil {
				it.Close()
				return nil, ctx.Err()
			}
			raw := it.Raw()
			if q.Where != nil {
				if ok, err := q.Where.Match(ctx, raw); err != nil || !ok {
					continue
				}
			}
			if got == q.Limit {
				tl.More = true
				break
			}
			p, err := raw.JSON()
			if err != nil {
				it.Close()
				return nil, fmt.Errorf("%s seq %d: %w", st.Name(), raw.Seq, err)
			}
			recent = append(recent, newest{raw.Time(), p})
			got++
		}
		if err := it.Close(); err != nil {
			return nil, fmt.Errorf("read %s: %w", st.Name(), err)
		}
	}
	slices.SortStableFunc(recent, func(a, b newest) int {
		switch {
		case a.t > b.t:
			return -1
		case a.t < b.t:
			return 1
		}
		return 0
	})
	if len(recent) > q.Limit {
		recent, tl.More = recent[:q.Limit], true
	}
	tl.Events = make([]json.RawMessage, len(recent))
	for i, n := range recent {
		tl.Events[i] = n.raw
	}
	return tl, nil
}

func (s *Server) serveTimeline(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	q, streams, err := s.timelineQuery(r, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	tl, err := BuildTimeline(r.Context(), streams, q)
	var ee *filter.EvalError
	if errors.As(err, &ee) {
		// The filter's own cost (or the caller leaving), not the journal.
		writeError(w, http.StatusBadRequest, badParam("where", err))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, tl)
}

func (s *Server) timelineQuery(r *http.Request, now time.Time) (TimelineQuery, []*journal.Stream, error) {
	var q TimelineQuery
	since, err := timeParam(r, "since", now, now.Add(-time.Hour))
	if err != nil {
		return q, nil, err
	}
	until, err := timeParam(r, "until", now, now)
	if err != nil {
		return q, nil, err
	}
	if until.Before(since) {
		return q, nil, badParam("until", fmt.Errorf("%s is before since (%s)", until.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339)))
	}
	q.Since, q.Until = since.UnixNano(), until.UnixNano()
	if q.Buckets, err = intParam(r, "buckets", 120, 1, 2000); err != nil {
		return q, nil, err
	}
	if q.Limit, err = intParam(r, "limit", 200, 0, 5000); err != nil {
		return q, nil, err
	}
	if q.Where, err = whereParam(r); err != nil {
		return q, nil, err
	}
	streams, err := s.streamsParam(r)
	return q, streams, err
}
