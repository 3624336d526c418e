package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"

	"github.com/cairnhq/cairn/journal"
)

// Alerting: Prometheus's rule manager evaluates the alerting and
// recording rules (Prometheus's semantics: pending for `for`, then
// firing, resolved when the expression stops returning the series,
// keep_firing_for), and this engine journals every transition of every
// alert as alert.pending, alert.firing and alert.resolved, and posts
// firing and resolved alerts to --alert-webhook in Alertmanager's webhook
// shape. The definitions themselves are audit events (alert.add,
// alert.rm, alert.rules, alert.silence), folded into memory at start; the
// rule files the manager reads under <data>/metrics/rules are derived
// from them.

// The kinds of the alerting events.
const (
	KindAlertAdd      = "alert.add"
	KindAlertRm       = "alert.rm"
	KindAlertRules    = "alert.rules"
	KindAlertSilence  = "alert.silence"
	KindAlertPending  = "alert.pending"
	KindAlertFiring   = "alert.firing"
	KindAlertResolved = "alert.resolved"
)

// definitionKinds are the kinds the definitions are folded from.
var definitionKinds = []string{KindAlertAdd, KindAlertRm, KindAlertRules, KindAlertSilence}

// AlertDef is one alert as alert add defines it: a PromQL alerting rule,
// or an event monitor over the journal.
type AlertDef struct {
	Name          string            `json:"name"`
	Expr          string            `json:"expr,omitempty"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	// An event monitor: more than Count events of Stream matching Where
	// within Within.
	Events bool   `json:"events,omitempty"`
	Where  string `json:"where,omitempty"`
	Stream string `json:"stream,omitempty"`
	Count  int    `json:"count,omitempty"`
	Within string `json:"within,omitempty"`
}

// alertRule is the definition as a Prometheus rule.
func (d AlertDef) alertRule() (rulefmt.Rule, error) {
	r := rulefmt.Rule{Alert: d.Name, Expr: d.Expr, Labels: d.Labels, Annotations: d.Annotations}
	for _, f := range []struct {
		s   string
		dst *model.Duration
	}{{d.For, &r.For}, {d.KeepFiringFor, &r.KeepFiringFor}} {
		if f.s == "" {
			continue
		}
		v, err := model.ParseDuration(f.s)
		if err != nil {
			return r, err
		}
		*f.dst = v
	}
	return r, nil
}

// alertGroupsYAML renders a definition as a Prometheus rule file.
func alertGroupsYAML(d AlertDef) ([]byte, error) {
	r, err := d.alertRule()
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{{Name: d.Name, Rules: []rulefmt.Rule{r}}}})
}

// alertState is the alerting definitions folded from the journal, and
// each alert's last journaled state.
type alertState struct {
	mu       sync.Mutex
	defs     map[string]AlertDef
	files    map[string]string    // rule file name -> content (alert rules load)
	silenced map[string]time.Time // alert name -> until
	// last is each alert instance's last journaled state, by rule name
	// and label set.
	last map[string]map[string]*alertInstance
	// monitors are the running event monitors, by name.
	monitors map[string]*eventMonitor
}

type alertInstance struct {
	State       string // pending, firing
	Labels      map[string]string
	Annotations map[string]string
	Value       float64
	ActiveAt    time.Time
	FiredAt     time.Time
}

func newAlertState() *alertState {
	return &alertState{defs: map[string]AlertDef{}, files: map[string]string{}, silenced: map[string]time.Time{}, last: map[string]map[string]*alertInstance{}, monitors: map[string]*eventMonitor{}}
}

// fold applies one definition event.
func (s *alertState) fold(kind string, data map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, _ := data["name"].(string)
	switch kind {
	case KindAlertAdd:
		var d AlertDef
		if b, err := json.Marshal(data["def"]); err == nil && json.Unmarshal(b, &d) == nil && d.Name != "" {
			s.defs[d.Name] = d
		}
	case KindAlertRm:
		delete(s.defs, name)
		delete(s.files, name)
	case KindAlertRules:
		content, _ := data["content"].(string)
		s.files[name] = content
	case KindAlertSilence:
		until, _ := data["until"].(string)
		if t, err := time.Parse(time.RFC3339Nano, until); err == nil {
			s.silenced[name] = t
		}
	}
}

// load folds every definition event of the audit stream, in seq order.
func (s *alertState) load(audit *journal.Stream) error {
	return foldKinds(audit, definitionKinds, s.fold)
}

// writeRuleFiles writes the rule files of the definitions into dir,
// removing the ones no definition has any more, and returns their paths.
func (s *alertState) writeRuleFiles(dir string) ([]string, error) {
	s.mu.Lock()
	want := map[string][]byte{}
	for name, d := range s.defs {
		if d.Events {
			continue
		}
		b, err := alertGroupsYAML(d)
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("alert %s: %w", name, err)
		}
		want["alert-"+name+".yml"] = b
	}
	for name, content := range s.files {
		want["rules-"+name+".yml"] = []byte(content)
	}
	s.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if _, ok := want[e.Name()]; !ok {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	var paths []string
	for name, b := range want {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err != nil || !bytes.Equal(old, b) {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return nil, err
			}
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths, nil
}

// silencedUntil is when the silence of name ends (zero: none).
func (s *alertState) silencedUntil(name string, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.silenced[name]; t.After(now) {
		return t
	}
	return time.Time{}
}

// Transition is one alert instance changing state.
type Transition struct {
	Kind        string // alert.pending, alert.firing, alert.resolved
	Rule        string
	Expr        string
	Labels      map[string]string
	Annotations map[string]string
	Value       float64
	ActiveAt    time.Time
	FiredAt     time.Time
	From        string // the state left, for resolved
}

// diff compares a rule's active alerts with what was last journaled and
// returns the transitions, updating the record.
func (s *alertState) diff(rule string, expr string, active []*rules.Alert) []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.last[rule]
	if prev == nil {
		prev = map[string]*alertInstance{}
		s.last[rule] = prev
	}
	seen := map[string]bool{}
	var out []Transition
	for _, a := range active {
		key := a.Labels.String()
		seen[key] = true
		state := a.State.String()
		p := prev[key]
		if p != nil && p.State == state {
			p.Value = a.Value
			continue
		}
		inst := &alertInstance{State: state, Labels: a.Labels.Map(), Annotations: a.Annotations.Map(), Value: a.Value, ActiveAt: a.ActiveAt, FiredAt: a.FiredAt}
		prev[key] = inst
		kind := KindAlertPending
		if a.State == rules.StateFiring {
			kind = KindAlertFiring
		}
		out = append(out, Transition{Kind: kind, Rule: rule, Expr: expr, Labels: inst.Labels, Annotations: inst.Annotations, Value: a.Value, ActiveAt: a.ActiveAt, FiredAt: a.FiredAt})
	}
	for key, p := range prev {
		if seen[key] {
			continue
		}
		delete(prev, key)
		out = append(out, Transition{Kind: KindAlertResolved, Rule: rule, Expr: expr, Labels: p.Labels, Annotations: p.Annotations, Value: p.Value, ActiveAt: p.ActiveAt, FiredAt: p.FiredAt, From: p.State})
	}
	sort.Slice(out, func(i, j int) bool {
		return labels.FromMap(out[i].Labels).String() < labels.FromMap(out[j].Labels).String()
	})
	return out
}

// body is the transition as an audit event.
func (t Transition) body(node string, silenced time.Time) *journal.Body {
	data := map[string]any{"alert": t.Rule, "expr": t.Expr, "labels": anyMap(t.Labels), "annotations": anyMap(t.Annotations), "value": t.Value}
	if !t.ActiveAt.IsZero() {
		data["active_at"] = t.ActiveAt.UTC().Format(time.RFC3339Nano)
	}
	if !t.FiredAt.IsZero() {
		data["fired_at"] = t.FiredAt.UTC().Format(time.RFC3339Nano)
	}
	if t.From != "" {
		data["from"] = t.From
	}
	if !silenced.IsZero() {
		data["silenced_until"] = silenced.UTC().Format(time.RFC3339Nano)
	}
	return &journal.Body{Kind: t.Kind, Subject: t.Rule, Node: node, Actor: journal.Actor{UID: -1, GID: -1, Via: "system"}, Data: data}
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// webhookMessage is Alertmanager's webhook payload (version 4).
type webhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []webhookAlert    `json:"alerts"`
}

type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookFor builds the message of a firing or resolved transition.
func webhookFor(t Transition, now time.Time) webhookMessage {
	status := "firing"
	a := webhookAlert{Status: status, Labels: t.Labels, Annotations: t.Annotations, StartsAt: t.FiredAt, Fingerprint: fmt.Sprintf("%016x", labels.FromMap(t.Labels).Hash())}
	if a.StartsAt.IsZero() {
		a.StartsAt = t.ActiveAt
	}
	if t.Kind == KindAlertResolved {
		status, a.Status, a.EndsAt = "resolved", "resolved", now
	}
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	return webhookMessage{
		Version: "4", GroupKey: fmt.Sprintf("{}:{alertname=%q}", t.Rule), Status: status, Receiver: "cairn",
		GroupLabels: map[string]string{"alertname": t.Rule}, CommonLabels: t.Labels, CommonAnnotations: a.Annotations,
		Alerts: []webhookAlert{a},
	}
}

// postWebhook posts msg to url, retrying with back-off (1s, 2s, 4s, 8s)
// until ctx ends.
func postWebhook(ctx context.Context, client *http.Client, url string, msg webhookMessage) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	wait := time.Second
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("webhook %s answered %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
	return last
}

// ruleFileName is the name a loaded rule file is kept under: its base
// name without extension.
func ruleFileName(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(strings.TrimSuffix(base, ".yml"), ".yaml")
}
