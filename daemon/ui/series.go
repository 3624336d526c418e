package ui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// SeriesQuery asks for a time series of one numeric field of one kind of
// observation (the capture engine's res samples before the metrics engine
// is linked), one series per subject (a cgroup, a process).
type SeriesQuery struct {
	Stream       string
	Kind         string // exact: read through the kind index
	Field        string // data.cpu_delta_s, data.working_set, …
	Since, Until int64  // ns
	Step         int64  // ns
	// Rate sums each step's values and divides by its length in seconds
	// (a delta such as cpu_delta_s becomes cores); otherwise each step is
	// the mean of its values.
	Rate bool
	Top  int // the series with the largest mean, at most
	// Where narrows the events (a container, a cgroup).
	Where *filter.Filter
}

// Series is one subject's points: [unix ms, value], one per step that had
// a sample.
type Series struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"`
}

// SeriesAnswer is what /ui/api/series answers.
type SeriesAnswer struct {
	Step   float64  `json:"step"` // ms
	Series []Series `json:"series"`
}

// BuildSeries reads the events of q's kind in its range and aggregates the
// field per step and subject, server-side, as Prometheus's range queries
// do: the browser gets a point per step, not a sample per event.
func BuildSeries(ctx context.Context, st *journal.Stream, q SeriesQuery) (*SeriesAnswer, error) {
	get, err := filter.Field(q.Field)
	if err != nil {
		return nil, badParam("field", err)
	}
	subj, err := filter.Field("subject")
	if err != nil {
		return nil, err
	}
	n := int((q.Until-q.Since)/q.Step) + 1
	if n > 11000 {
		return nil, badParam("step", fmt.Errorf("%d points per series; at most 11000, as Prometheus allows", n))
	}
	type acc struct {
		sum   []float64
		count []int32
	}
	by := map[string]*acc{}
	it := st.Scan(journal.Query{Kind: q.Kind, Since: q.Since, Until: q.Until})
	defer it.Close()
	for i := 0; it.Next(); i++ {
		if i&4095 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		raw := it.Raw()
		if q.Where != nil && !q.Where.MatchRaw(raw) {
			continue
		}
		v, ok := get.Get(raw)
		if !ok {
			continue
		}
		f, ok := number(v)
		if !ok {
			continue
		}
		sv, _ := subj.Get(raw)
		subject, _ := sv.(string)
		a := by[subject]
		if a == nil {
			a = &acc{sum: make([]float64, n), count: make([]int32, n)}
			by[subject] = a
		}
		b := int((raw.Time() - q.Since) / q.Step)
		if b >= 0 && b < n {
			a.sum[b] += f
			a.count[b]++
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", st.Name(), err)
	}
	type ranked struct {
		s    Series
		mean float64
	}
	var all []ranked
	for name, a := range by {
		s := Series{Name: name, Points: [][2]float64{}}
		var total float64
		for b := range n {
			if a.count[b] == 0 {
				continue
			}
			v := a.sum[b] / float64(a.count[b])
			if q.Rate {
				v = a.sum[b] / (float64(q.Step) / 1e9)
			}
			s.Points = append(s.Points, [2]float64{float64((q.Since + int64(b)*q.Step) / 1e6), v})
			total += v
		}
		all = append(all, ranked{s, total / math.Max(1, float64(len(s.Points)))})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].mean != all[j].mean {
			return all[i].mean > all[j].mean
		}
		return all[i].s.Name < all[j].s.Name
	})
	out := &SeriesAnswer{Step: float64(q.Step) / 1e6, Series: []Series{}}
	for i, r := range all {
		if q.Top > 0 && i >= q.Top {
			break
		}
		out.Series = append(out.Series, r.s)
	}
	return out, nil
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

func (s *Server) serveSeries(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	qp := r.URL.Query()
	q := SeriesQuery{Stream: qp.Get("stream"), Kind: qp.Get("kind"), Field: qp.Get("field"), Rate: qp.Get("agg") == "rate"}
	if q.Stream == "" {
		q.Stream = journal.Capture
	}
	st := s.Journal.Stream(q.Stream)
	var err error
	switch {
	case st == nil:
		err = badParam("stream", fmt.Errorf("unknown stream %q", q.Stream))
	case q.Kind == "" || strings.ContainsAny(q.Kind, "*?"):
		err = badParam("kind", errors.New("give one exact kind, such as capture.cgroup_sample"))
	case q.Field == "":
		err = badParam("field", errors.New("give a numeric field, such as data.working_set"))
	case qp.Get("agg") != "" && qp.Get("agg") != "rate" && qp.Get("agg") != "avg":
		err = badParam("agg", fmt.Errorf("%q: want avg or rate", qp.Get("agg")))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	since, err := timeParam(r, "since", now, now.Add(-time.Hour))
	if err == nil {
		var until time.Time
		if until, err = timeParam(r, "until", now, now); err == nil {
			q.Since, q.Until = since.UnixNano(), until.UnixNano()
			if q.Until <= q.Since {
				err = badParam("until", errors.New("until must be after since"))
			}
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	step := qp.Get("step")
	if step == "" {
		q.Step = max(int64(time.Second), (q.Until-q.Since)/240)
	} else if d, perr := time.ParseDuration(step); perr == nil && d >= time.Millisecond {
		q.Step = int64(d)
	} else {
		writeError(w, http.StatusBadRequest, badParam("step", fmt.Errorf("%q: want a duration such as 15s", step)))
		return
	}
	if q.Top, err = intParam(r, "top", 8, 0, 1000); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if q.Where, err = whereParam(r); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ans, err := BuildSeries(r.Context(), st, q)
	var pe *paramError
	if errors.As(err, &pe) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, ans)
}
