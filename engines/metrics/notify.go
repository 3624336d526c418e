package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Notifications: every firing, warning, no data and resolved transition
// (and every renotify) goes, as Alertmanager's webhook JSON, to each
// receiver the daemon was started with: --alert-webhook, NATS on
// cairn.alerts.NAME (--alert-nats), --alert-command. Each is retried with
// back-off until it takes the message.

// retryBackoff is the first wait between attempts; it doubles (1s, 2s,
// 4s, 8s).
const retryBackoff = time.Second

// retryAttempts is how many times a notification is tried.
const retryAttempts = 5

// retry calls send until it succeeds, attempts times at most, waiting
// wait, 2×wait, … between attempts; it returns the last error, or ctx's.
func retry(ctx context.Context, attempts int, wait time.Duration, send func(context.Context) error) error {
	var last error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		if last = send(ctx); last == nil {
			return nil
		}
	}
	return last
}

// receiver is one destination of the notifications.
type receiver struct {
	name string // for the log: webhook URL, nats SUBJECT, command PATH
	send func(ctx context.Context, t Transition, body []byte) error
}

// webhookReceiver posts to url.
func webhookReceiver(client *http.Client, url string) receiver {
	return receiver{name: "webhook " + url, send: func(ctx context.Context, _ Transition, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("webhook %s answered %s", url, resp.Status)
		}
		return nil
	}}
}

// natsSubject is the subject an alert's notifications go to:
// cairn.alerts.NAME, the characters NATS gives a meaning (. * > and
// white space) in NAME made _.
func natsSubject(rule string) string {
	return "cairn.alerts." + strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, rule)
}

// natsReceiver publishes through the daemon's embedded NATS.
func natsReceiver(publish func(subject string, msg []byte) error) receiver {
	return receiver{name: "nats cairn.alerts.NAME", send: func(_ context.Context, t Transition, body []byte) error {
		return publish(natsSubject(t.Rule), body)
	}}
}

// maxCommandOutput is how much of a command's output is kept for the
// error of a failed run.
const maxCommandOutput = 4096

// commandReceiver runs path (no shell) with the message on its stdin and
// the alert's name and status in CAIRN_ALERT_NAME and CAIRN_ALERT_STATUS;
// a run that outlives timeout is killed with its process group, and it
// or a non-zero exit is a failure.
func commandReceiver(path string, timeout time.Duration) receiver {
	return receiver{name: "command " + path, send: func(ctx context.Context, t Transition, body []byte) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, path)
		cmd.Stdin = bytes.NewReader(body)
		status := "firing"
		if t.Kind == KindAlertResolved {
			status = "resolved"
		}
		cmd.Env = append(os.Environ(), "CAIRN_ALERT_NAME="+t.Rule, "CAIRN_ALERT_STATUS="+status, "CAIRN_ALERT_KIND="+t.Kind)
		out := &limitedBuffer{max: maxCommandOutput}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		// A child that keeps the output open does not hold the run.
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("alert command %s: killed after %v", path, timeout)
		}
		if err != nil {
			msg := strings.TrimSpace(out.String())
			if msg != "" {
				return fmt.Errorf("alert command %s: %w: %s", path, err, msg)
			}
			return fmt.Errorf("alert command %s: %w", path, err)
		}
		return nil
	}}
}

// checkCommand refuses an --alert-command that cannot run: not an
// absolute path, missing, or not an executable file.
func checkCommand(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("--alert-command %q: give an absolute path (it runs without a shell)", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--alert-command: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("--alert-command %s: not an executable file", path)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }

// notify sends a transition to every receiver, each in its own goroutine,
// retried with back-off.
func (m *module) notify(t Transition, now time.Time) {
	if len(m.receivers) == 0 {
		return
	}
	body, err := json.Marshal(webhookFor(t, now))
	if err != nil {
		m.log.Warn("alert notification", "alert", t.Rule, "err", err)
		return
	}
	for _, rc := range m.receivers {
		m.wg.Go(func() {
			err := retry(m.runCtx, retryAttempts, retryBackoff, func(ctx context.Context) error { return rc.send(ctx, t, body) })
			if err != nil && !errors.Is(err, context.Canceled) {
				m.log.Warn("alert notification not delivered", "alert", t.Rule, "receiver", rc.name, "err", err)
			}
		})
	}
}
