package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/rules"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) alertVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "alert add",
			Access:  dsl.AccessWrite,
			Summary: "define an alert: a PromQL alerting rule, or an event monitor over the journal",
			Help: "alert add NAME expr='PROMQL' [for=D] [keep-firing-for=D] [labels.K=V]… [annotations.K=V]… is a Prometheus\n" +
				"alerting rule: pending while the expression returns a series for less than for=, then firing, resolved when it\n" +
				"stops. alert add NAME events count>N where 'CEL' [within=10m] [stream=audit] is an event monitor: firing while\n" +
				"more than N events matching the filter happened within the window. Every transition is an audit event\n" +
				"(alert.pending, alert.firing, alert.resolved). A NAME already defined is replaced.\n\n" +
				"  alert add hot expr='rate(container_cpu_usage_seconds_total[1m]) > 0.5' for=1m labels.severity=page\n" +
				"  alert add flapping events count>3 where 'kind == \"deploy.resurrect\"' within=10m",
			Args: []dsl.Arg{
				{Name: "NAME", Required: true, Help: "the alert's name (its alertname label)"},
				{Name: "KIND", Help: "events: an event monitor over the journal"},
				{Name: "COND", Help: "an event monitor's threshold: count>N or count>=N"},
			},
			Options: []dsl.Option{
				{Name: "expr", Meta: "PROMQL", Help: "the alerting expression"},
				{Name: "for", Kind: dsl.Duration, Help: "how long the expression must hold before the alert fires"},
				{Name: "keep-firing-for", Kind: dsl.Duration, Help: "how long the alert keeps firing after the expression stops"},
				{Name: "within", Kind: dsl.Duration, Help: "an event monitor's window (default 10m)"},
				{Name: "stream", Help: "the stream an event monitor reads (default audit)"},
			},
			Bag:   true,
			Where: true,
		}, Run: m.runAlertAdd},
		{Spec: dsl.Spec{
			Verb:    "alert rm",
			Access:  dsl.AccessWrite,
			Summary: "remove an alert, or a loaded rule file",
			Help:    "alert rm NAME removes an alert defined with alert add, or the rule file loaded under NAME; its firing\nalerts resolve.",
			Args:    []dsl.Arg{{Name: "NAME", Required: true}},
		}, Run: m.runAlertRm},
		{Spec: dsl.Spec{
			Verb:    "alert rules load",
			Access:  dsl.AccessWrite,
			Summary: "load a Prometheus rule file (alerting and recording rules)",
			Help: "alert rules load ./FILE reads a Prometheus rule file on the client's disk, checks it as promtool check rules\n" +
				"does, and evaluates its groups; loading a file of the same name again replaces it.\n\n  alert rules load ./node.rules.yml",
			Args:       []dsl.Arg{{Name: "FILE", Required: true, Help: "the rule file (a path with a /)"}},
			Options:    []dsl.Option{{Name: "source", Help: "the file's content (the CLI sends it)"}, {Name: "name", Help: "the name it is kept under (default: the file's base name)"}},
			ClientFile: "FILE",
		}, Run: m.runAlertRulesLoad},
		{Spec: dsl.Spec{
			Verb:    "alert silence",
			Access:  dsl.AccessWrite,
			Summary: "silence an alert's notifications for a while",
			Help:    "alert silence NAME for=1h sends no webhook for the alert until then; its transitions are still journaled\n(with silenced_until). for=0 ends a silence.",
			Args:    []dsl.Arg{{Name: "NAME", Required: true}},
			Options: []dsl.Option{{Name: "for", Kind: dsl.Duration, Help: "how long (required)"}},
		}, Run: m.runAlertSilence},
		{Spec: dsl.Spec{
			Verb:    "alerts",
			Access:  dsl.AccessRead,
			Summary: "list the alerts and their states",
			Help:    "alerts answers a row per alert: its kind (promql, events), state (inactive, pending, firing), its\nactive instances, and its silence.",
		}, Run: m.runAlerts},
	}
}

// alertNames are the alerting rules' and event monitors' names.
func (m *module) alertNames() map[string]bool {
	names := map[string]bool{}
	for _, r := range m.rules.AlertingRules() {
		names[r.Name()] = true
	}
	m.alerts.mu.Lock()
	for n := range m.alerts.defs {
		names[n] = true
	}
	m.alerts.mu.Unlock()
	return names
}

// record appends a definition event, folds it and reloads the rules.
func (m *module) record(ctx context.Context, actor journal.Actor, kind, subject string, data map[string]any) error {
	m.recordMu.Lock()
	defer m.recordMu.Unlock()
	if _, err := m.audit.Append(ctx, &journal.Body{Kind: kind, Subject: subject, Node: m.node, Actor: actor, Data: data}); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	m.alerts.fold(kind, data)
	if err := m.reloadAlerts(); err != nil {
		return wire.Errorf(wire.Internal, "%s recorded, but the rules did not reload: %v", kind, err)
	}
	return nil
}

func (m *module) runAlertAdd(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	d := AlertDef{Name: st.Args["NAME"].Text, Labels: map[string]string{}, Annotations: map[string]string{}}
	if !model.UTF8Validation.IsValidLabelName(d.Name) || strings.ContainsAny(d.Name, "/ ") {
		return engines.Errorf(wire.InvalidArgument, st.Args["NAME"], "alert name %q: letters, digits and _", d.Name)
	}
	for _, b := range st.Bag {
		k, ok := strings.CutPrefix(b.Key, "labels.")
		dst := d.Labels
		if !ok {
			if k, ok = strings.CutPrefix(b.Key, "annotations."); !ok {
				return &engines.PosError{Code: wire.InvalidArgument, Pos: b.Pos, Msg: fmt.Sprintf("unknown option %q: alert add takes expr=, for=, keep-firing-for=, within=, stream=, labels.K=V and annotations.K=V", b.Key)}
			}
			dst = d.Annotations
		}
		dst[k] = b.Value.Text
	}
	dur := func(name string) (string, error) {
		w, ok := st.Opt(name)
		if !ok {
			return "", nil
		}
		v, err := w.Duration()
		if err != nil || v < 0 {
			return "", engines.Errorf(wire.InvalidArgument, w, "%s=: a duration, such as 5m", name)
		}
		return model.Duration(v).String(), nil
	}
	var err error
	if d.For, err = dur("for"); err != nil {
		return err
	}
	if d.KeepFiringFor, err = dur("keep-firing-for"); err != nil {
		return err
	}
	if d.Within, err = dur("within"); err != nil {
		return err
	}
	if kw, ok := st.Args["KIND"]; ok && kw.Text != "" {
		if kw.Text != "events" {
			return engines.Errorf(wire.InvalidArgument, kw, "%q: the only alert kind is events (an event monitor); a PromQL alert takes expr=", kw.Text)
		}
		d.Events = true
	}
	if d.Events {
		if err := m.eventMonitorDef(st, &d); err != nil {
			return err
		}
	} else {
		w, ok := st.Opt("expr")
		if !ok {
			return wire.Errorf(wire.InvalidArgument, "alert add %s: give expr='PROMQL' (or events count>N where 'CEL' for an event monitor)", d.Name)
		}
		if _, err := m.parseExpr(w); err != nil {
			return err
		}
		d.Expr = w.Text
		if st.Where != nil {
			return engines.Errorf(wire.InvalidArgument, *st.Where, "where is for event monitors (alert add NAME events count>N where 'CEL')")
		}
		if err := checkAlertDef(d, m.store); err != nil {
			return err
		}
	}
	var data map[string]any
	b, _ := json.Marshal(d)
	_ = json.Unmarshal(b, &data)
	if err := m.record(ctx, r.Actor(), KindAlertAdd, d.Name, map[string]any{"name": d.Name, "def": data}); err != nil {
		return err
	}
	return r.Row(d)
}

// eventMonitorDef fills an event monitor's definition from the statement.
func (m *module) eventMonitorDef(st *dsl.Statement, d *AlertDef) error {
	if st.Where == nil {
		return wire.Errorf(wire.InvalidArgument, "alert add %s events: give where 'CEL', the events to count", d.Name)
	}
	if _, err := engines.Where(st); err != nil {
		return err
	}
	d.Where = st.Where.Text
	cw, ok := st.Args["COND"]
	if !ok || cw.Text == "" {
		return wire.Errorf(wire.InvalidArgument, "alert add %s events: give the threshold, count>N, before where", d.Name)
	}
	n, err := parseCountCond(cw.Text)
	if err != nil {
		return engines.Errorf(wire.InvalidArgument, cw, "%v", err)
	}
	d.Count = n
	if d.Within == "" {
		d.Within = "10m"
	}
	if w, ok := st.Opt("stream"); ok {
		if m.stream(w.Text) == nil {
			return engines.Errorf(wire.InvalidArgument, w, "no stream %q", w.Text)
		}
		d.Stream = w.Text
	}
	for _, o := range []string{"expr", "for", "keep-firing-for"} {
		if w, ok := st.Opt(o); ok {
			return engines.Errorf(wire.InvalidArgument, w, "%s= is for PromQL alerts, not event monitors", o)
		}
	}
	// Within as Go parses it, for the monitor.
	v, _ := model.ParseDuration(d.Within)
	d.Within = time.Duration(v).String()
	return nil
}

// parseCountCond reads count>N (more than N) or count>=N (N or more) as
// the largest count that does not fire.
func parseCountCond(s string) (int, error) {
	rest, ok := strings.CutPrefix(s, "count")
	if !ok {
		return 0, fmt.Errorf("%q: the threshold is count>N or count>=N", s)
	}
	ge := strings.HasPrefix(rest, ">=")
	rest = strings.TrimPrefix(strings.TrimPrefix(rest, ">="), ">")
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || (ge && n < 1) {
		return 0, fmt.Errorf("%q: the threshold is count>N or count>=N with N a whole number", s)
	}
	if ge {
		n--
	}
	return n, nil
}

// checkAlertDef checks the rule as promtool check rules would.
func checkAlertDef(d AlertDef, st *Store) error {
	b, err := alertGroupsYAML(d)
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "alert %s: %v", d.Name, err)
	}
	if _, errs := rulefmt.Parse(b, false, model.UTF8Validation, st.Parser, slog.New(slog.DiscardHandler)); len(errs) > 0 {
		return wire.Errorf(wire.InvalidArgument, "alert %s: %v", d.Name, errors.Join(errs...))
	}
	return nil
}

func (m *module) runAlertRm(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["NAME"]
	m.alerts.mu.Lock()
	_, isDef := m.alerts.defs[w.Text]
	_, isFile := m.alerts.files[w.Text]
	m.alerts.mu.Unlock()
	if !isDef && !isFile {
		return engines.Errorf(wire.NotFound, w, "no alert or rule file %q (alerts lists them)", w.Text)
	}
	return m.record(ctx, r.Actor(), KindAlertRm, w.Text, map[string]any{"name": w.Text})
}

func (m *module) runAlertRulesLoad(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	fw := st.Args["FILE"]
	src, ok := st.Opt("source")
	if !ok {
		return engines.Errorf(wire.InvalidArgument, fw, "%q: name the file with a path holding a / (./%s), so the CLI reads and sends it", fw.Text, fw.Text)
	}
	name := ruleFileName(fw.Text)
	if w, ok := st.Opt("name"); ok {
		name = w.Text
	}
	rgs, errs := rulefmt.Parse([]byte(src.Text), false, model.UTF8Validation, m.store.Parser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return wire.Errorf(wire.InvalidArgument, "%s: %s", fw.Text, strings.Join(msgs, "; "))
	}
	nAlert, nRecord := 0, 0
	for _, g := range rgs.Groups {
		for _, rl := range g.Rules {
			if rl.Alert != "" {
				nAlert++
			} else {
				nRecord++
			}
		}
	}
	if err := m.record(ctx, r.Actor(), KindAlertRules, name, map[string]any{"name": name, "file": fw.Text, "content": src.Text, "groups": len(rgs.Groups), "alerting": nAlert, "recording": nRecord}); err != nil {
		return err
	}
	return r.Row(map[string]any{"name": name, "groups": len(rgs.Groups), "alerting": nAlert, "recording": nRecord})
}

func (m *module) runAlertSilence(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	w := st.Args["NAME"]
	if !m.alertNames()[w.Text] {
		return engines.Errorf(wire.NotFound, w, "no alert %q (alerts lists them)", w.Text)
	}
	fw, ok := st.Opt("for")
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "alert silence %s: give for=DURATION", w.Text)
	}
	d, err := fw.Duration()
	if err != nil || d < 0 {
		return engines.Errorf(wire.InvalidArgument, fw, "for=: a duration, such as 1h")
	}
	until := time.Now().Add(d).UTC().Format(time.RFC3339Nano)
	if err := m.record(ctx, r.Actor(), KindAlertSilence, w.Text, map[string]any{"name": w.Text, "until": until}); err != nil {
		return err
	}
	return r.Row(map[string]any{"name": w.Text, "silenced_until": until})
}

// AlertRow is one alert as alerts lists it.
type AlertRow struct {
	Name          string          `json:"name"`
	Kind          string          `json:"kind"` // promql, events
	State         string          `json:"state"`
	Expr          string          `json:"expr"`
	Active        []AlertInstance `json:"active,omitempty"`
	Count         *int64          `json:"count,omitempty"` // an event monitor's events in its window
	SilencedUntil *time.Time      `json:"silenced_until,omitempty"`
}

// AlertInstance is one active alert of a rule.
type AlertInstance struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	Value    float64           `json:"value"`
	ActiveAt time.Time         `json:"active_at"`
}

func (m *module) runAlerts(ctx context.Context, r engines.Request) error {
	now := time.Now()
	var rows []AlertRow
	for _, ar := range m.rules.AlertingRules() {
		row := AlertRow{Name: ar.Name(), Kind: "promql", State: "inactive", Expr: ar.Query().String()}
		if s := ar.State(); s == rules.StatePending || s == rules.StateFiring {
			row.State = s.String()
		}
		for _, a := range ar.ActiveAlerts() {
			row.Active = append(row.Active, AlertInstance{Labels: a.Labels.Map(), State: a.State.String(), Value: a.Value, ActiveAt: a.ActiveAt})
		}
		rows = append(rows, row)
	}
	m.alerts.mu.Lock()
	for name, mo := range m.alerts.monitors {
		row := AlertRow{Name: name, Kind: "events", State: "inactive", Expr: fmt.Sprintf("count>%d where %s within %s", mo.def.Count, mo.def.Where, mo.def.Within)}
		if mo.firing.Load() {
			row.State = "firing"
		}
		n := mo.count.Load()
		row.Count = &n
		rows = append(rows, row)
	}
	m.alerts.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	for _, row := range rows {
		if t := m.alerts.silencedUntil(row.Name, now); !t.IsZero() {
			row.SilencedUntil = &t
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}
