package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// monitorEvents lists the alert transitions of name in the journal, every
// kind a monitor writes.
func monitorEvents(t *testing.T, d *daemonProc, name string) []httpEvent {
	t.Helper()
	var out []httpEvent
	for _, e := range parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=alert.*")) {
		switch e.Kind {
		case "alert.pending", "alert.firing", "alert.warning", "alert.nodata", "alert.resolved":
			if e.Subject == name {
				out = append(out, e)
			}
		}
	}
	return out
}

// statsdConn dials the daemon's DogStatsD listener.
func statsdConn(t *testing.T, d *daemonProc) func(string) {
	t.Helper()
	st := parseNDJSON[struct {
		Statsd string `json:"statsd"`
	}](t, cliOK(t, d, "-o", "json", "metrics", "status"))
	if len(st) != 1 || !strings.HasPrefix(st[0].Statsd, "127.0.0.1:") {
		t.Fatalf("metrics status: %+v", st)
	}
	conn, err := net.Dial("udp", st[0].Statsd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func(s string) {
		t.Helper()
		if _, err := conn.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
}

// countWebhooks counts the messages for alertname of status whose alert
// has the annotation level.
func (wr *webhookReceiver) count(alertname, status, level string) int {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	n := 0
	for _, m := range wr.msgs {
		if m.Status == status && m.GroupLabels["alertname"] == alertname && len(m.Alerts) == 1 && m.Alerts[0].Annotations["level"] == level {
			n++
		}
	}
	return n
}

// TestMetricsMonitor: a Datadog-style metric monitor over a DogStatsD
// gauge goes warning above 80, critical above 90, holds critical until
// the value falls below the recovery threshold 85, then back to warning
// until below 75; each transition is in the journal with its level and
// threshold; a critical one is renotified every renotify=; a query that
// answers nothing is alert.nodata after no-data=; thresholds Datadog
// refuses are refused.
func TestMetricsMonitor(t *testing.T) {
	t.Parallel()
	wr, hook := newWebhookReceiver(t)
	d := startDaemon(t, withFlags("--metrics-interval", "200ms", "--statsd", "127.0.0.1:0", "--alert-webhook", hook))
	send := statsdConn(t, d)

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"monitor", "expr=up", "critical=90", "warning=95"}, "warning=95 must be below critical=90"},
		{[]string{"monitor", "expr=up", "critical=10", "critical-recovery=5", "below"}, "critical-recovery=5 must be above critical=10"},
		{[]string{"monitor", "expr=up", "critical=ninety"}, "critical=ninety: a number"},
		{[]string{"monitor", "expr=up"}, "give critical=N"},
		{[]string{"monitor", "expr=sum(up", "critical=1"}, "PromQL"},
		{[]string{"expr=up", "critical=1"}, "critical= is for metric monitors"},
	} {
		if _, errOut, code := cli(t, d, append([]string{"alert", "add", "Bad"}, bad.args...)...); code != 2 || !strings.Contains(errOut, bad.want) {
			t.Errorf("alert add Bad %v: exit %d, %s (want %q)", bad.args, code, errOut, bad.want)
		}
	}

	send("shop.temp:70|g|#room:a")
	cliOK(t, d, "alert", "add", "Temp", "monitor", "expr=shop_temp", "critical=90", "warning=80", "critical-recovery=85", "warning-recovery=75", "renotify=1s", "labels.team=ops")
	cliOK(t, d, "alert", "add", "Missing", "monitor", `expr=nothing_here{job="none"}`, "critical=1", "no-data=1s")

	waitKinds := func(what, want string) []httpEvent {
		t.Helper()
		var evs []httpEvent
		waitFor(t, what, 60*time.Second, func() bool {
			evs = monitorEvents(t, d, "Temp")
			return kindsOf(evs) == want
		})
		return evs
	}
	send("shop.temp:82|g|#room:a")
	evs := waitKinds("warning above 80", "warning")
	if e := evs[0]; e.Data["level"] != "warning" || e.Data["threshold"] != float64(80) || e.Data["value"] != float64(82) || e.Data["labels"].(map[string]any)["room"] != "a" || e.Data["labels"].(map[string]any)["team"] != "ops" {
		t.Errorf("alert.warning: %+v", e)
	}
	send("shop.temp:95|g|#room:a")
	evs = waitKinds("critical above 90", "warning,firing")
	if e := evs[1]; e.Data["level"] != "critical" || e.Data["threshold"] != float64(90) || e.Data["from"] != "warning" {
		t.Errorf("alert.firing: %+v", e)
	}
	// Renotified while critical: the webhook gets it again.
	waitFor(t, "the critical notification sent again", 60*time.Second, func() bool {
		return wr.count("Temp", "firing", "critical") >= 2
	})
	// 87 is below 90 but not below the recovery threshold: still critical.
	send("shop.temp:87|g|#room:a")
	waitFor(t, "the monitor to judge 87", 60*time.Second, func() bool {
		rows := parseNDJSON[struct {
			Name   string `json:"name"`
			State  string `json:"state"`
			Active []struct {
				Value float64 `json:"value"`
				State string  `json:"state"`
			} `json:"active"`
		}](t, cliOK(t, d, "-o", "json", "alerts"))
		for _, r := range rows {
			if r.Name == "Temp" && len(r.Active) == 1 && r.Active[0].Value == 87 {
				if r.State != "firing" || r.Active[0].State != "firing" {
					t.Fatalf("at 87, above critical-recovery=85: %+v", r)
				}
				return true
			}
		}
		return false
	})
	send("shop.temp:84|g|#room:a")
	evs = waitKinds("recovered from critical below 85, to warning", "warning,firing,warning")
	if e := evs[2]; e.Data["from"] != "firing" || e.Data["value"] != float64(84) {
		t.Errorf("alert.warning from critical: %+v", e)
	}
	send("shop.temp:74|g|#room:a")
	evs = waitKinds("recovered below 75", "warning,firing,warning,resolved")
	if e := evs[3]; e.Data["from"] != "warning" {
		t.Errorf("alert.resolved: %+v", e)
	}
	wr.waitStatus(t, "Temp", "resolved")

	// No data: nothing_here never answers.
	var nd []httpEvent
	waitFor(t, "alert.nodata", 60*time.Second, func() bool {
		nd = monitorEvents(t, d, "Missing")
		return len(nd) > 0
	})
	if kindsOf(nd) != "nodata" || nd[0].Data["no_data"] != "1s" || nd[0].Data["level"] != "nodata" || nd[0].Data["last_data"] == nil {
		t.Errorf("alert.nodata: %+v", nd)
	}
	waitFor(t, "the no-data webhook", 60*time.Second, func() bool { return wr.count("Missing", "firing", "nodata") >= 1 })
	if !strings.Contains(cliOK(t, d, "-o", "json", "alerts"), `"state":"nodata"`) {
		t.Errorf("alerts does not show Missing in no data")
	}
	// Removing the monitor resolves its no data.
	cliOK(t, d, "alert", "rm", "Missing")
	waitFor(t, "Missing resolved once removed", 30*time.Second, func() bool {
		return kindsOf(monitorEvents(t, d, "Missing")) == "nodata,resolved"
	})
}

// TestMetricsAlertNotifiers: a firing and a resolved alert reach a real
// NATS subscriber on cairn.alerts.NAME and an --alert-command, both in
// Alertmanager's webhook JSON; the command failing its first run is run
// again (retried with back-off) and gets the message.
func TestMetricsAlertNotifiers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "notify")
	// The first run fails; later ones keep their stdin, one file each.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
if [ ! -e `+dir+`/failed ]; then : > `+dir+`/failed; echo 'pager down' >&2; exit 1; fi
cat > "$(mktemp `+dir+`/msg.XXXXXX)"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, withFlags("--metrics-interval", "200ms", "--alert-command", script))
	b, err := os.ReadFile(filepath.Join(d.Data, "nats.token"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(d.Status.NATS, nats.Token(strings.TrimSpace(string(b))), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("cairn.alerts.>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	cliOK(t, d, "alert", "add", "CairnUp", `expr=up{job="cairn"} == 1`, "labels.team=ops")
	next := func(status string) amMessage {
		t.Helper()
		for {
			select {
			case m := <-msgs:
				var am amMessage
				if err := json.Unmarshal(m.Data, &am); err != nil {
					t.Fatalf("NATS %s: %s: %v", m.Subject, m.Data, err)
				}
				if m.Subject != "cairn.alerts.CairnUp" {
					t.Fatalf("subject %s", m.Subject)
				}
				if am.Status == status {
					return am
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("no %s message on cairn.alerts.CairnUp", status)
			}
		}
	}
	fired := next("firing")
	if fired.Version != "4" || len(fired.Alerts) != 1 || fired.Alerts[0].Labels["team"] != "ops" || fired.Alerts[0].Labels["alertname"] != "CairnUp" {
		t.Errorf("firing on NATS: %+v", fired)
	}
	// The command: failed once, then got the firing message.
	commandMsgs := func() []amMessage {
		files, _ := filepath.Glob(filepath.Join(dir, "msg.*"))
		var out []amMessage
		for _, f := range files {
			b, err := os.ReadFile(f)
			var am amMessage
			if err != nil || json.Unmarshal(b, &am) != nil {
				continue // being written
			}
			out = append(out, am)
		}
		return out
	}
	waitFor(t, "the command's retried run", 60*time.Second, func() bool { return len(commandMsgs()) >= 1 })
	if _, err := os.Stat(filepath.Join(dir, "failed")); err != nil {
		t.Errorf("the command's first run did not fail: %v", err)
	}
	if am := commandMsgs()[0]; am.Status != "firing" || am.GroupLabels["alertname"] != "CairnUp" {
		t.Errorf("command stdin: %+v", am)
	}
	cliOK(t, d, "alert", "rm", "CairnUp")
	if resolved := next("resolved"); len(resolved.Alerts) != 1 || resolved.Alerts[0].EndsAt.IsZero() {
		t.Errorf("resolved on NATS: %+v", resolved)
	}
	waitFor(t, "the command's resolved run", 60*time.Second, func() bool {
		for _, am := range commandMsgs() {
			if am.Status == "resolved" {
				return true
			}
		}
		return false
	})
}

// TestMetricsAlertCommandRefused: a daemon whose --alert-command cannot
// run refuses to start, saying why.
func TestMetricsAlertCommandRefused(t *testing.T) {
	t.Parallel()
	plain := filepath.Join(t.TempDir(), "notify.txt")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for cmd, want := range map[string]string{"notify.sh": "absolute path", plain: "not an executable file"} {
		d := newDaemon(t, withFlags("--alert-command", cmd))
		d.launch()
		if st := d.waitExit(30 * time.Second); st.ExitCode() == 0 {
			t.Errorf("--alert-command %s: exit 0", cmd)
		}
		if log := d.Log(); !strings.Contains(log, "--alert-command") || !strings.Contains(log, want) {
			t.Errorf("--alert-command %s: the refusal does not say %q:\n%s", cmd, want, log)
		}
	}
}
