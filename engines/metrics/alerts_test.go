package metrics

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

func TestParseCountCond(t *testing.T) {
	for in, want := range map[string]int{"count>3": 3, "count>=4": 3, "count>0": 0} {
		if got, err := parseCountCond(in); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"count", "count>x", "cnt>3", "count>=0", "count>-1"} {
		if _, err := parseCountCond(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

// TestMonitorWindow: more than Count events within the window fire; the
// window sliding past them resolves.
func TestMonitorWindow(t *testing.T) {
	mo := &eventMonitor{def: AlertDef{Count: 3}, within: 10 * time.Minute}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if fire, _ := mo.window(t0.Add(time.Duration(i)*time.Minute).UnixNano(), t0.Add(time.Duration(i)*time.Minute)); fire {
			t.Fatalf("fired at %d", i+1)
		}
	}
	if fire, _ := mo.window(t0.Add(3*time.Minute).UnixNano(), t0.Add(3*time.Minute)); !fire {
		t.Fatal("did not fire at 4")
	}
	if fire, resolve := mo.window(0, t0.Add(5*time.Minute)); fire || resolve {
		t.Fatal("changed with no event inside the window")
	}
	// At 10m01s the first event left the window: 3 remain.
	if _, resolve := mo.window(0, t0.Add(10*time.Minute+time.Second)); !resolve || mo.count.Load() != 3 {
		t.Fatalf("did not resolve when the first event left the window (count %d)", mo.count.Load())
	}
}

// TestAlertDiff: pending, then firing, then gone is resolved; an
// unchanged state writes nothing.
func TestAlertDiff(t *testing.T) {
	s := newAlertState()
	a := &rules.Alert{State: rules.StatePending, Labels: labels.FromStrings("alertname", "A", "name", "x"), Value: 1, ActiveAt: time.Unix(10, 0)}
	kinds := func(trs []Transition) string {
		var k []string
		for _, t := range trs {
			k = append(k, t.Kind)
		}
		return strings.Join(k, ",")
	}
	if got := kinds(s.diff("A", "x > 0", []*rules.Alert{a})); got != KindAlertPending {
		t.Fatalf("first: %s", got)
	}
	if got := kinds(s.diff("A", "x > 0", []*rules.Alert{a})); got != "" {
		t.Fatalf("unchanged: %s", got)
	}
	a.State, a.FiredAt = rules.StateFiring, time.Unix(20, 0)
	if got := kinds(s.diff("A", "x > 0", []*rules.Alert{a})); got != KindAlertFiring {
		t.Fatalf("fired: %s", got)
	}
	trs := s.diff("A", "x > 0", nil)
	if kinds(trs) != KindAlertResolved || trs[0].From != "firing" {
		t.Fatalf("gone: %+v", trs)
	}
	// The webhook of the resolution, in Alertmanager's shape.
	msg := webhookFor(trs[0], time.Unix(30, 0))
	b, _ := json.Marshal(msg)
	for _, want := range []string{`"version":"4"`, `"status":"resolved"`, `"groupLabels":{"alertname":"A"}`, `"startsAt":"1970-01-01T00:00:20Z"`, `"endsAt":"1970-01-01T00:00:30Z"`, `"fingerprint":"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("webhook %s lacks %s", b, want)
		}
	}
}

// TestAlertStateFold: definitions fold in order; rm removes; the rule
// files written are Prometheus's format.
func TestAlertStateFold(t *testing.T) {
	s := newAlertState()
	s.fold(KindAlertAdd, map[string]any{"name": "A", "def": map[string]any{"name": "A", "expr": "up == 0", "for": "5m", "labels": map[string]any{"severity": "page"}}})
	s.fold(KindAlertRules, map[string]any{"name": "node", "content": "groups: []\n"})
	s.fold(KindAlertAdd, map[string]any{"name": "B", "def": map[string]any{"name": "B", "expr": "up == 1"}})
	s.fold(KindAlertRm, map[string]any{"name": "B"})
	dir := t.TempDir()
	paths, err := s.writeRuleFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || !strings.HasSuffix(paths[0], "alert-A.yml") || !strings.HasSuffix(paths[1], "rules-node.yml") {
		t.Fatalf("files %v", paths)
	}
	st := openTestStore(t, t.TempDir(), 0)
	defer st.Close()
	if err := checkAlertDef(s.defs["A"], st); err != nil {
		t.Fatal(err)
	}
	if err := checkAlertDef(AlertDef{Name: "C", Expr: "up", Annotations: map[string]string{"x": "{{ .Broken"}}, st); err == nil {
		t.Fatal("a broken annotation template was accepted")
	}
}
