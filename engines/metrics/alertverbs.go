package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
			Summary: "define an alert: a PromQL alerting rule, a metric monitor with thresholds, or an event monitor",
			Help: "alert add NAME expr='PROMQL' [for=D] [keep-firing-for=D] [labels.K=V]… [annotations.K=V]… is a Prometheus\n" +
				"alerting rule: pending while the expression returns a series for less than for=, then firing, resolved when it\n" +
				"stops. alert add NAME monitor expr='PROMQL' critical=N [warning=N] [critical-recovery=N] [warning-recovery=N]\n" +
				"[below] [no-data=D] is a Datadog metric monitor: each series of the query is critical above critical= (alert.firing),\n" +
				"a warning above warning= (alert.warning), and recovers only once below its recovery threshold (below: the mirror);\n" +
				"a query answering nothing for no-data= is alert.nodata. alert add NAME events count>N where 'CEL' [within=10m]\n" +
				"[stream=audit] is an event monitor: firing while more than N events matching the filter happened within the\n" +
				"window. renotify=D sends a still-firing alert's notification again every D. Every transition is an audit\n" +
				"event. A NAME already defined is replaced.\n\n" +
				"  alert add hot expr='rate(container_cpu_usage_seconds_total[1m]) > 0.5' for=1m labels.severity=page\n" +
				"  alert add disk monitor expr='100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)' critical=90 warning=80 critical-recovery=85 no-data=10m renotify=1h\n" +
				"  alert add flapping events count>3 where 'kind == \"deploy.resurrect\"' within=10m",
			Args: []dsl.Arg{
				{Name: "NAME", Required: true, Help: "the alert's name (its alertname label)"},
				{Name: "KIND", Help: "monitor: a metric monitor with thresholds; events: an event monitor over the journal"},
				{Name: "COND", Help: "an event monitor's threshold: count>N or count>=N"},
			},
			Options: []dsl.Option{
				{Name: "expr", Meta: "PROMQL", Help: "the alerting expression"},
				{Name: "for", Kind: dsl.Duration, Help: "how long the expression must hold before the alert fires"},
				{Name: "keep-firing-for", Kind: dsl.Duration, Help: "how long the alert keeps firing after the expression stops"},
				{Name: "within", Kind: dsl.Duration, Help: "an event monitor's window (default 10m)"},
				{Name: "stream", Help: "the stream an event monitor reads (default audit)"},
				{Name: "critical", Meta: "N", Help: "a monitor's critical threshold (alert.firing above it)"},
				{Name: "warning", Meta: "N", Help: "a monitor's warning threshold (alert.warning above it)"},
				{Name: "critical-recovery", Meta: "N", Help: "a critical series recovers only below this"},
				{Name: "warning-recovery", Meta: "N", Help: "a warning series recovers only below this"},
				{Name: "no-data", Kind: dsl.Duration, Help: "a monitor whose query answers nothing this long is alert.nodata"},
				{Name: "renotify", Kind: dsl.Duration, Help: "send a still-firing alert's notification again this often"},
			},
			Flags: []dsl.Flag{{Name: "below", Help: "a monitor alerts below its thresholds, not above"}},
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
			Help:    "alert silence NAME for=1h sends no notification for the alert until then; its transitions are still\njournaled (with silenced_until). for=0 ends a silence.",
			Args:    []dsl.Arg{{Name: "NAME", Required: true}},
			Options: []dsl.Option{{Name: "for", Kind: dsl.Duration, Help: "how long (required)"}},
		}, Run: m.runAlertSilence},
		{Spec: dsl.Spec{
			Verb:    "alerts",
			Access:  dsl.AccessRead,
			Summary: "list the alerts and their states",
			Help:    "alerts answers a row per alert: its kind (promql, monitor, events), state (inactive, pending, warning,\nfiring, nodata), its active instances, and its silence.",
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
				return &engines.PosError{Code: wire.InvalidArgument, Pos: b.Pos, Msg: fmt.Sprintf("unknown option %q: alert add takes expr=, for=, keep-firing-for=, within=, stream=, critical=, warning=, critical-recovery=, warning-recovery=, no-data=, renotify=, labels.K=V and annotations.K=V", b.Key)}
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
	if d.Renotify, err = dur("renotify"); err != nil {
		return err
	}
	if d.Renotify == "0s" {
		d.Renotify = ""
	}
	if kw, ok := st.Args["KIND"]; ok && kw.Text != "" {
		switch kw.Text {
		case "events":
			d.Events = true
		case "monitor":
			d.Monitor = true
		default:
			return engines.Errorf(wire.InvalidArgument, kw, "%q: the alert kinds are monitor (a metric monitor) and events (an event monitor); a PromQL alert takes expr= alone", kw.Text)
		}
	}
	if !d.Monitor {
		for _, o := range monitorOptions {
			if w, ok := st.Opt(o); ok {
				return engines.Errorf(wire.InvalidArgument, w, "%s= is for metric monitors (alert add NAME monitor expr='PROMQL' critical=N …)", o)
			}
		}
		if st.Flags["below"] {
			return wire.Errorf(wire.InvalidArgument, "alert add %s: below is for metric monitors (alert add NAME monitor …)", d.Name)
		}
	}
	switch {
	case d.Events:
		if err := m.eventMonitorDef(st, &d); err != nil {
			return err
		}
	case d.Monitor:
		if err := m.metricMonitorDef(st, &d); err != nil {
			return err
		}
	default:
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

// monitorOptions are the options only a metric monitor takes.
var monitorOptions = []string{"critical", "warning", "critical-recovery", "warning-recovery", "no-data"}

// metricMonitorDef fills a metric monitor's definition from the
// statement: its query, thresholds (checked as Datadog checks them) and
// no-data window.
func (m *module) metricMonitorDef(st *dsl.Statement, d *AlertDef) error {
	w, ok := st.Opt("expr")
	if !ok {
		return wire.Errorf(wire.InvalidArgument, "alert add %s monitor: give expr='PROMQL', the query whose series the thresholds judge", d.Name)
	}
	if _, err := m.parseExpr(w); err != nil {
		return err
	}
	d.Expr = w.Text
	if st.Where != nil {
		return engines.Errorf(wire.InvalidArgument, *st.Where, "where is for event monitors (alert add NAME events count>N where 'CEL')")
	}
	if cw, ok := st.Args["COND"]; ok && cw.Text != "" {
		return engines.Errorf(wire.InvalidArgument, cw, "%q: a metric monitor's thresholds are critical=N and warning=N", cw.Text)
	}
	for _, o := range []string{"for", "keep-firing-for", "within", "stream"} {
		if w, ok := st.Opt(o); ok {
			return engines.Errorf(wire.InvalidArgument, w, "%s= is not an option of metric monitors", o)
		}
	}
	for _, f := range []struct {
		name string
		dst  **float64
	}{{"critical", &d.Critical}, {"warning", &d.Warning}, {"critical-recovery", &d.CriticalRecovery}, {"warning-recovery", &d.WarningRecovery}} {
		w, ok := st.Opt(f.name)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(w.Text, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return engines.Errorf(wire.InvalidArgument, w, "%s=%s: a number, such as 90 or 0.5", f.name, w.Text)
		}
		*f.dst = &v
	}
	if d.Critical == nil {
		return wire.Errorf(wire.InvalidArgument, "alert add %s monitor: give critical=N, the threshold that fires it", d.Name)
	}
	d.Below = st.Flags["below"]
	if err := d.thresholds().Check(); err != nil {
		return wire.Errorf(wire.InvalidArgument, "alert add %s monitor: %v", d.Name, err)
	}
	if w, ok := st.Opt("no-data"); ok {
		v, err := w.Duration()
		if err != nil || v <= 0 {
			return engines.Errorf(wire.InvalidArgument, w, "no-data=: a positive duration, such as 10m")
		}
		d.NoData = model.Duration(v).String()
	}
	return nil
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
	Kind          string          `json:"kind"` // promql, monitor, events
	State         string          `json:"state"`
	Expr          string          `json:"expr"`
	Active        []AlertInstance `json:"active,omitempty"`
	Count         *int64          `json:"count,omitempty"` // an event monitor's events in its window
	Error         string          `json:"error,omitempty"` // a metric monitor's last evaluation error
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
	mms := make([]*metricMonitor, 0, len(m.alerts.metricMonitors))
	for _, mo := range m.alerts.metricMonitors {
		mms = append(mms, mo)
	}
	m.alerts.mu.Unlock()
	for _, mo := range mms {
		row := AlertRow{Name: mo.def.Name, Kind: "monitor", Expr: mo.def.describeMonitor()}
		row.State, row.Active = mo.state()
		mo.mu.Lock()
		row.Error = mo.lastErr
		mo.mu.Unlock()
		rows = append(rows, row)
	}
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
