package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

func fp(f float64) *float64 { return &f }

// TestThresholdsNext walks a series through Datadog's levels: critical
// above 90, warning above 80, a critical one recovering only below 85, a
// warning one only below 75; and the mirror for a below monitor.
func TestThresholdsNext(t *testing.T) {
	above := Thresholds{Critical: 90, Warning: fp(80), CriticalRecovery: fp(85), WarningRecovery: fp(75)}
	below := Thresholds{Critical: 10, Warning: fp(20), CriticalRecovery: fp(15), WarningRecovery: fp(25), Below: true}
	for _, tc := range []struct {
		name   string
		th     Thresholds
		values []float64
		want   string
	}{
		{"above", above, []float64{70, 82, 91, 87, 85, 84, 78, 76, 75, 74, 95, 60}, "inactive warning firing firing firing warning warning warning warning inactive firing inactive"},
		{"at the threshold is not above it", Thresholds{Critical: 90, Warning: fp(80)}, []float64{90, 80}, "warning inactive"},
		{"below", below, []float64{30, 18, 9, 13, 15, 16, 22, 25, 26}, "inactive warning firing firing firing warning warning warning inactive"},
		{"no recovery thresholds", Thresholds{Critical: 90, Warning: fp(80)}, []float64{95, 89, 81, 80}, "firing warning warning inactive"},
		{"critical only", Thresholds{Critical: 90, CriticalRecovery: fp(50)}, []float64{95, 80, 60, 50, 49}, "firing firing firing firing inactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := LevelOK
			var got []string
			for _, v := range tc.values {
				cur = tc.th.Next(cur, v)
				got = append(got, cur.String())
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Errorf("levels\n got %s\nwant %s", s, tc.want)
			}
		})
	}
}

// TestThresholdsCheck: thresholds on the wrong side are refused, naming
// both, as Datadog refuses them.
func TestThresholdsCheck(t *testing.T) {
	for _, th := range []Thresholds{
		{Critical: 90, Warning: fp(80), CriticalRecovery: fp(85), WarningRecovery: fp(75)},
		{Critical: 10, Warning: fp(20), CriticalRecovery: fp(15), Below: true},
		{Critical: 1},
	} {
		if err := th.Check(); err != nil {
			t.Errorf("%+v: %v", th, err)
		}
	}
	for _, tc := range []struct {
		th   Thresholds
		want string
	}{
		{Thresholds{Critical: 90, Warning: fp(95)}, "warning=95 must be below critical=90"},
		{Thresholds{Critical: 90, CriticalRecovery: fp(90)}, "critical-recovery=90 must be below critical=90"},
		{Thresholds{Critical: 90, WarningRecovery: fp(70)}, "warning-recovery=70 needs warning="},
		{Thresholds{Critical: 90, Warning: fp(80), WarningRecovery: fp(85)}, "warning-recovery=85 must be below warning=80"},
		{Thresholds{Critical: 10, Warning: fp(5), Below: true}, "warning=5 must be above critical=10"},
	} {
		if err := tc.th.Check(); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %s", tc.th, err, tc.want)
		}
	}
}

func kindsLevels(trs []Transition) string {
	var out []string
	for _, t := range trs {
		s := strings.TrimPrefix(t.Kind, "alert.")
		if t.From != "" {
			s += "<" + t.From
		}
		out = append(out, fmt.Sprintf("%s[%s]", s, t.Labels["host"]))
	}
	return strings.Join(out, " ")
}

func series(host string, v float64) seriesValue {
	return seriesValue{Labels: labels.FromStrings("__name__", "cpu", "host", host), Value: v}
}

// TestMetricMonitorStep: series move through the levels independently,
// labelled as alerts (name dropped, alertname and the definition's labels
// added); a series gone resolves.
func TestMetricMonitorStep(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	d := AlertDef{Name: "cpu", Monitor: true, Expr: "cpu", Critical: fp(90), Warning: fp(80), CriticalRecovery: fp(85), Labels: map[string]string{"team": "ops"}}
	mo := newMetricMonitor(d, t0)
	steps := []struct {
		vec  []seriesValue
		want string
	}{
		{[]seriesValue{series("a", 10), series("b", 10)}, ""},
		{[]seriesValue{series("a", 82), series("b", 95)}, "warning[a] firing[b]"},
		{[]seriesValue{series("a", 83), series("b", 86)}, ""},
		{[]seriesValue{series("a", 92), series("b", 84)}, "firing<warning[a] warning<firing[b]"},
		{[]seriesValue{series("a", 92)}, "resolved<warning[b]"},
		{[]seriesValue{series("a", 10)}, "resolved<firing[a]"},
	}
	for i, s := range steps {
		trs := mo.step(t0.Add(time.Duration(i)*time.Minute), s.vec)
		if got := kindsLevels(trs); got != s.want {
			t.Fatalf("step %d: %s, want %s", i, got, s.want)
		}
		for _, tr := range trs {
			if tr.Labels["alertname"] != "cpu" || tr.Labels["team"] != "ops" || tr.Labels["__name__"] != "" {
				t.Errorf("step %d: labels %v", i, tr.Labels)
			}
			if tr.Kind == KindAlertFiring && (tr.Level != "critical" || *tr.Threshold != 90) {
				t.Errorf("step %d: firing level %s threshold %v", i, tr.Level, tr.Threshold)
			}
			if tr.Kind == KindAlertWarning && (tr.Level != "warning" || *tr.Threshold != 80) {
				t.Errorf("step %d: warning level %s threshold %v", i, tr.Level, tr.Threshold)
			}
		}
	}
}

// TestMetricMonitorNoData: with no-data=10m an empty answer holds the
// states until 10 minutes without data, then the monitor is in no data
// (once), and data coming back resolves it and judges the series anew.
func TestMetricMonitorNoData(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	d := AlertDef{Name: "cpu", Monitor: true, Expr: "cpu", Critical: fp(90), NoData: "10m"}
	mo := newMetricMonitor(d, t0)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	if got := kindsLevels(mo.step(at(9), nil)); got != "" {
		t.Fatalf("no data before 10m: %s", got)
	}
	trs := mo.step(at(10), nil)
	if kindsLevels(trs) != "nodata[]" || trs[0].NoDataFor != "10m" || !trs[0].LastData.Equal(t0) || trs[0].Labels["alertname"] != "cpu" {
		t.Fatalf("at 10m from the start without data: %+v", trs)
	}
	if got := kindsLevels(mo.step(at(11), nil)); got != "" {
		t.Fatalf("no data twice: %s", got)
	}
	if st, _ := mo.state(); st != "nodata" {
		t.Fatalf("state %s", st)
	}
	if got := kindsLevels(mo.step(at(12), []seriesValue{series("a", 95)})); got != "resolved<nodata[] firing[a]" {
		t.Fatalf("data back: %s", got)
	}
	// A firing series whose data stops holds until the window passes.
	if got := kindsLevels(mo.step(at(13), nil)); got != "" {
		t.Fatalf("the series gone, before no-data: %s", got)
	}
	if st, active := mo.state(); st != "firing" || len(active) != 1 {
		t.Fatalf("state %s %v", st, active)
	}
	if got := kindsLevels(mo.step(at(22), nil)); got != "nodata[]" {
		t.Fatalf("at 10m after the last data: %s", got)
	}
	// Without no-data=, an empty answer resolves.
	mo = newMetricMonitor(AlertDef{Name: "cpu", Monitor: true, Critical: fp(90)}, t0)
	mo.step(at(1), []seriesValue{series("a", 95)})
	if got := kindsLevels(mo.step(at(2), nil)); got != "resolved<firing[a]" {
		t.Fatalf("gone without no-data: %s", got)
	}
	if got := kindsLevels(mo.step(at(60), nil)); got != "" {
		t.Fatalf("no data without no-data=: %s", got)
	}
}

// TestRenotifier: a firing instance is due again every interval; resolved
// ends it; an alert without renotify= is never due.
func TestRenotifier(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	r := newRenotifier()
	hourly := func(string) time.Duration { return time.Hour }
	fire := Transition{Kind: KindAlertFiring, Rule: "A", Labels: map[string]string{"alertname": "A"}}
	other := Transition{Kind: KindAlertFiring, Rule: "B", Labels: map[string]string{"alertname": "B"}}
	r.track(fire, time.Hour, t0)
	r.track(other, 0, t0)
	if due := r.due(t0.Add(59*time.Minute), hourly); len(due) != 0 {
		t.Fatalf("due before the hour: %v", due)
	}
	if due := r.due(t0.Add(time.Hour), hourly); len(due) != 1 || due[0].Rule != "A" {
		t.Fatalf("due at the hour: %v", due)
	}
	if due := r.due(t0.Add(time.Hour+time.Minute), hourly); len(due) != 0 {
		t.Fatalf("due again a minute later: %v", due)
	}
	if due := r.due(t0.Add(2*time.Hour), hourly); len(due) != 1 {
		t.Fatalf("not due at the second hour: %v", due)
	}
	warn := fire
	warn.Kind = KindAlertWarning
	r.track(warn, time.Hour, t0.Add(2*time.Hour+time.Minute))
	if due := r.due(t0.Add(3*time.Hour+time.Minute), hourly); len(due) != 1 || due[0].Kind != KindAlertWarning {
		t.Fatalf("the warning is what is renotified: %v", due)
	}
	resolved := fire
	resolved.Kind = KindAlertResolved
	r.track(resolved, time.Hour, t0.Add(4*time.Hour))
	if due := r.due(t0.Add(10*time.Hour), hourly); len(due) != 0 {
		t.Fatalf("due after resolved: %v", due)
	}
	// A definition that no longer asks for renotifies ends them.
	r.track(fire, time.Hour, t0)
	if due := r.due(t0.Add(2*time.Hour), func(string) time.Duration { return 0 }); len(due) != 0 || len(r.m) != 0 {
		t.Fatalf("renotified without renotify=: %v", due)
	}
}
