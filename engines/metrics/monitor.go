package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// eventMonitor is a Datadog-style event monitor over the journal: it fires
// when more than Count events of a stream match a CEL filter within a
// sliding window, and resolves when the window holds Count or fewer.
type eventMonitor struct {
	def    AlertDef
	filter *filter.Filter
	within time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	// owned by run
	times []int64 // ns of the matching events in the window, ascending
	since time.Time
	// firing and count are what alerts shows, written by run.
	firing atomic.Bool
	count  atomic.Int64
}

// window is the pure core: it adds an event time (0: none), drops times
// older than the window ending at now, and says whether the monitor
// changes state.
func (mo *eventMonitor) window(add int64, now time.Time) (fire, resolve bool) {
	if add != 0 {
		mo.times = append(mo.times, add)
	}
	cut := now.Add(-mo.within).UnixNano()
	i := 0
	for i < len(mo.times) && mo.times[i] < cut {
		i++
	}
	mo.times = mo.times[i:]
	mo.count.Store(int64(len(mo.times)))
	switch over := len(mo.times) > mo.def.Count; {
	case over && !mo.firing.Load():
		mo.firing.Store(true)
		mo.since = now
		return true, false
	case !over && mo.firing.Load():
		mo.firing.Store(false)
		return false, true
	}
	return false, false
}

// run follows the stream from the start of the window until ctx ends,
// calling emit on each transition; tick re-checks the window as time
// passes without events.
func (mo *eventMonitor) run(ctx context.Context, st *journal.Stream, tick time.Duration, emit func(Transition)) {
	defer close(mo.done)
	// Start where the window starts, so a restarted daemon counts what
	// happened while it was down.
	from := st.DurableSeq() + 1
	it := st.Scan(journal.Query{Since: time.Now().Add(-mo.within).UnixNano()})
	if it.Next() {
		from = it.Raw().Seq
	}
	it.Close()
	sub := st.Subscribe(ctx, from, mo.filter.MatchRaw)
	defer sub.Close()
	items := make(chan int64)
	go func() {
		defer close(items)
		for {
			item, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if item.Raw == nil {
				continue
			}
			select {
			case items <- item.Raw.Time():
			case <-ctx.Done():
				return
			}
		}
	}()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		var add int64
		select {
		case <-ctx.Done():
			return
		case ts, ok := <-items:
			if !ok {
				return
			}
			add = ts
		case <-t.C:
		}
		fire, resolve := mo.window(add, time.Now())
		tr := Transition{Rule: mo.def.Name, Expr: "events where " + mo.def.Where, Labels: withAlertname(mo.def.Labels, mo.def.Name), Annotations: mo.def.Annotations, Value: float64(len(mo.times)), ActiveAt: mo.since, FiredAt: mo.since}
		switch {
		case fire:
			tr.Kind = KindAlertFiring
			emit(tr)
		case resolve:
			tr.Kind, tr.From = KindAlertResolved, "firing"
			emit(tr)
		}
	}
}

func withAlertname(l map[string]string, name string) map[string]string {
	out := map[string]string{"alertname": name}
	for k, v := range l {
		out[k] = v
	}
	return out
}
