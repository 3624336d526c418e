package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRetry: a send that fails twice is tried a third time; one that
// always fails is tried attempts times and its last error returned.
func TestRetry(t *testing.T) {
	n := 0
	err := retry(context.Background(), 5, time.Millisecond, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("retry: %v after %d attempts", err, n)
	}
	n = 0
	err = retry(context.Background(), 4, time.Millisecond, func(context.Context) error { n++; return errors.New("down") })
	if err == nil || err.Error() != "down" || n != 4 {
		t.Fatalf("retry: %v after %d attempts", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := retry(ctx, 4, time.Hour, func(context.Context) error { return errors.New("down") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("retry after cancel: %v", err)
	}
}

func TestNATSSubject(t *testing.T) {
	for in, want := range map[string]string{"HotContainer": "cairn.alerts.HotContainer", "a.b*c>d e": "cairn.alerts.a_b_c_d_e"} {
		if got := natsSubject(in); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCommandReceiver: the command gets Alertmanager's JSON on stdin and
// the alert in its environment; a failing one's error carries its
// output; one that outlives its timeout is killed, with its children.
func TestCommandReceiver(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the test's scripts")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	ok := writeScript(t, `cat > `+out+`; echo "$CAIRN_ALERT_NAME $CAIRN_ALERT_STATUS $CAIRN_ALERT_KIND" > `+out+`.env`+"\n")
	tr := Transition{Kind: KindAlertResolved, Rule: "Hot", Labels: map[string]string{"alertname": "Hot"}, FiredAt: time.Unix(20, 0)}
	body, _ := json.Marshal(webhookFor(tr, time.Unix(30, 0)))
	if err := commandReceiver(ok, 10*time.Second).send(context.Background(), tr, body); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	var msg webhookMessage
	if err := json.Unmarshal(got, &msg); err != nil || msg.Status != "resolved" || msg.GroupLabels["alertname"] != "Hot" {
		t.Fatalf("stdin %s: %v", got, err)
	}
	if env, _ := os.ReadFile(out + ".env"); string(env) != "Hot resolved alert.resolved\n" {
		t.Fatalf("environment %q", env)
	}
	bad := writeScript(t, "echo 'no route to pager' >&2; exit 3\n")
	if err := commandReceiver(bad, 10*time.Second).send(context.Background(), tr, body); err == nil || !strings.Contains(err.Error(), "exit status 3: no route to pager") {
		t.Fatalf("failing command: %v", err)
	}
	// The child keeps stdout open; the process group is killed.
	hang := writeScript(t, "sleep 600 & sleep 600\n")
	if err := commandReceiver(hang, 200*time.Millisecond).send(context.Background(), tr, body); err == nil || !strings.Contains(err.Error(), "killed after 200ms") {
		t.Fatalf("hanging command: %v", err)
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o644)
	for path, want := range map[string]string{
		"notify.sh":                "absolute path",
		filepath.Join(dir, "none"): "no such file",
		plain:                      "not an executable file",
		dir:                        "not an executable file",
	} {
		if err := checkCommand(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	if err := checkCommand(writeScript(t, "exit 0\n")); err != nil {
		t.Error(err)
	}
}
