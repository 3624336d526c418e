package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// renotifier keeps the last notification of every alert instance still
// firing (warning, no data) whose definition has renotify=, and says when
// it is due again: Datadog's renotify interval, Alertmanager's
// repeat_interval.
type renotifier struct {
	mu sync.Mutex
	m  map[string]*renotifyEntry // rule and label set -> entry
}

type renotifyEntry struct {
	t     Transition
	every time.Duration
	last  time.Time
}

func newRenotifier() *renotifier { return &renotifier{m: map[string]*renotifyEntry{}} }

func renotifyKey(t Transition) string {
	return t.Rule + "\x00" + labels.FromMap(t.Labels).String()
}

// track records a transition notified (or, silenced, that would have
// been) at now: a firing, warning or no data one is renotified every
// every from now on; a resolved one, or every <= 0, ends that.
func (r *renotifier) track(t Transition, every time.Duration, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := renotifyKey(t)
	switch t.Kind {
	case KindAlertFiring, KindAlertWarning, KindAlertNoData:
		if every > 0 {
			r.m[key] = &renotifyEntry{t: t, every: every, last: now}
			return
		}
	case KindAlertPending:
		return
	}
	delete(r.m, key)
}

// due returns the transitions whose renotify interval has passed at now,
// counting the next interval from now. every is the interval an alert's
// definition asks for now: a definition changed since is followed, and
// one without renotify= (or gone) ends its instances' renotifies.
func (r *renotifier) due(now time.Time, every func(rule string) time.Duration) []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Transition
	for key, e := range r.m {
		e.every = every(e.t.Rule)
		if e.every <= 0 {
			delete(r.m, key)
			continue
		}
		if now.Sub(e.last) >= e.every {
			e.last = now
			out = append(out, e.t)
		}
	}
	return out
}
