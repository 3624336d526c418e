package metrics

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// The module's side of alerting: reloading the rule manager and the event
// monitors from the folded definitions, and journaling transitions.

// reloadAlerts makes the rule manager and the event monitors match the
// definitions. Alerts whose rule is gone are resolved.
func (m *module) reloadAlerts() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	files, err := m.alerts.writeRuleFiles(filepath.Join(m.dataDir, "metrics", "rules"))
	if err != nil {
		return err
	}
	if err := m.rules.Update(m.interval, files, labels.EmptyLabels(), "", m.evalIteration); err != nil {
		return err
	}
	defined := map[string]bool{}
	for _, r := range m.rules.AlertingRules() {
		defined[r.Name()] = true
	}
	m.alerts.mu.Lock()
	var gone []string
	for name := range m.alerts.last {
		if !defined[name] {
			if d, ok := m.alerts.defs[name]; ok && d.Events {
				continue
			}
			gone = append(gone, name)
		}
	}
	defs := map[string]AlertDef{}
	for n, d := range m.alerts.defs {
		if d.Events {
			defs[n] = d
		}
	}
	m.alerts.mu.Unlock()
	for _, name := range gone {
		m.emitTransitions(m.alerts.diff(name, "", nil))
	}
	return m.reloadMonitors(defs)
}

// reloadMonitors starts the event monitors defined and stops the others
// (a changed definition restarts its monitor).
func (m *module) reloadMonitors(defs map[string]AlertDef) error {
	// Stop first, outside the lock: a stopping monitor may be journaling
	// a transition, which reads the silences under it.
	m.alerts.mu.Lock()
	var stop []*eventMonitor
	for name, mo := range m.alerts.monitors {
		if d, ok := defs[name]; ok && equalDefs(d, mo.def) {
			continue
		}
		stop = append(stop, mo)
		delete(m.alerts.monitors, name)
	}
	m.alerts.mu.Unlock()
	for _, mo := range stop {
		mo.cancel()
		<-mo.done
		if mo.firing.Load() {
			m.emitTransitions([]Transition{{Kind: KindAlertResolved, Rule: mo.def.Name, Expr: "events where " + mo.def.Where, Labels: withAlertname(mo.def.Labels, mo.def.Name), From: "firing"}})
		}
	}
	m.alerts.mu.Lock()
	defer m.alerts.mu.Unlock()
	for name, d := range defs {
		if _, ok := m.alerts.monitors[name]; ok {
			continue
		}
		f, err := filter.Compile(d.Where)
		if err != nil {
			m.log.Warn("event monitor: where", "alert", name, "err", err)
			continue
		}
		within, err := time.ParseDuration(d.Within)
		if err != nil || within <= 0 {
			within = 10 * time.Minute
		}
		st := m.stream(d.Stream)
		if st == nil {
			m.log.Warn("event monitor: no such stream", "alert", name, "stream", d.Stream)
			continue
		}
		ctx, cancel := context.WithCancel(m.runCtx)
		mo := &eventMonitor{def: d, filter: f, within: within, cancel: cancel, done: make(chan struct{})}
		m.alerts.monitors[name] = mo
		m.wg.Go(func() { mo.run(ctx, st, m.interval, func(t Transition) { m.emitTransitions([]Transition{t}) }) })
	}
	return nil
}

func equalDefs(a, b AlertDef) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// stream returns the journal stream name, audit when empty.
func (m *module) stream(name string) *journal.Stream {
	if name == "" {
		name = journal.Audit
	}
	if m.journal == nil {
		return nil
	}
	return m.journal.Stream(name)
}

// evalIteration evaluates a rule group as Prometheus does, then journals
// the transitions of its alerts.
func (m *module) evalIteration(ctx context.Context, g *rules.Group, ts time.Time) {
	rules.DefaultEvalIterationFunc(ctx, g, ts)
	for _, r := range g.Rules() {
		ar, ok := r.(*rules.AlertingRule)
		if !ok {
			continue
		}
		m.emitTransitions(m.alerts.diff(ar.Name(), ar.Query().String(), ar.ActiveAlerts()))
	}
}

// emitTransitions journals each transition and posts firing and resolved
// ones to the webhook unless the alert is silenced.
func (m *module) emitTransitions(trs []Transition) {
	now := time.Now()
	for _, t := range trs {
		silenced := m.alerts.silencedUntil(t.Rule, now)
		if m.audit != nil {
			if _, err := m.audit.Append(m.runCtx, t.body(m.node, silenced)); err != nil && m.runCtx.Err() == nil {
				m.log.Warn("journal alert transition", "alert", t.Rule, "kind", t.Kind, "err", err)
			}
		}
		if m.webhook == "" || t.Kind == KindAlertPending || !silenced.IsZero() {
			continue
		}
		msg := webhookFor(t, now)
		m.wg.Go(func() {
			if err := postWebhook(m.runCtx, m.httpClient, m.webhook, msg); err != nil && m.runCtx.Err() == nil {
				m.log.Warn("alert webhook", "alert", t.Rule, "url", m.webhook, "err", err)
			}
		})
	}
}
