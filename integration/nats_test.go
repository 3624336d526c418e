package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairnhq/cairn/client"
)

// TestNATS subscribes a token-holding nats.go client to cairn.audit.> and
// requires every event emitted by 5 concurrent clients exactly once, in seq
// order, as the JSON `-o json` prints; clients without the token are refused.
func TestNATS(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	url := d.Status.NATS
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("status nats = %q, want nats://127.0.0.1:PORT", url)
	}
	tokPath := filepath.Join(d.Data, "nats.token")
	fi, err := os.Stat(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", tokPath, fi.Mode().Perm())
	}
	b, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))

	for name, opts := range map[string][]nats.Option{
		"no token":    nil,
		"wrong token": {nats.Token(token + "x")},
	} {
		nc, err := nats.Connect(url, append(opts, nats.Timeout(5*time.Second), nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("NATS client with %s was accepted", name)
			continue
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("NATS client with %s: %v, want an authorization error", name, err)
		}
	}

	nc, err := nats.Connect(url, nats.Token(token), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect with the token: %v", err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 1<<14) // room for every message: a full channel drops them
	sub, err := nc.ChanSubscribe("cairn.audit.>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil { // the server knows the subscription once this returns
		t.Fatal(err)
	}

	const writers, perWriter = 5, 100
	var (
		mu    sync.Mutex
		acked []int64
	)
	writerConns := make([]*client.Client, writers)
	for i := range writerConns {
		writerConns[i] = dial(t, d)
	}
	collect(writers, func(i int) {
		for n := range perWriter {
			kind := []string{"app.alpha", "app.beta"}[n%2]
			row, err := tryEmit(writerConns[i], fmt.Sprintf("emit %s w%d-%d w=%d n=%d", kind, i, n, i, n))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked = append(acked, row.Seq)
			mu.Unlock()
		}
	})
	slices.Sort(acked)
	if len(acked) != writers*perWriter {
		t.Fatalf("%d emits acknowledged, want %d", len(acked), writers*perWriter)
	}

	var got []wireEvent
	var payloads = map[int64][]byte{}
	deadline := time.After(30 * time.Second)
	for len(got) < len(acked) {
		select {
		case m := <-msgs:
			var ev wireEvent
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("message on %s is not an event: %v: %q", m.Subject, err, m.Data)
			}
			if want := "cairn.audit." + ev.Kind; m.Subject != want {
				t.Errorf("seq %d (%s) published on %s, want %s", ev.Seq, ev.Kind, m.Subject, want)
			}
			got = append(got, ev)
			payloads[ev.Seq] = m.Data
		case <-deadline:
			t.Fatalf("received %d of %d events within 30s", len(got), len(acked))
		}
	}
	// Nothing more may come: no duplicates behind the last one.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		t.Errorf("extra message after every event arrived: %s %q", m.Subject, m.Data)
	case <-time.After(200 * time.Millisecond):
	}

	for i, ev := range got {
		if ev.Seq != acked[i] {
			t.Fatalf("message #%d is seq %d, want %d (every emitted event once, in seq order)", i, ev.Seq, acked[i])
		}
	}

	// The payload is the event exactly as `-o json` prints it.
	c := dial(t, d)
	stored := events(t, c, fmt.Sprintf("events from=%d to=%d", acked[0], acked[len(acked)-1]))
	res := do(t, c, fmt.Sprintf("events from=%d to=%d", acked[0], acked[len(acked)-1]))
	if len(stored) != len(got) {
		t.Fatalf("journal holds %d events in %d..%d, NATS carried %d", len(stored), acked[0], acked[len(acked)-1], len(got))
	}
	for i, raw := range res.Events {
		var want, have any
		json.Unmarshal(raw, &want)
		json.Unmarshal(payloads[stored[i].Seq], &have)
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("seq %d: NATS payload\n%s\ndiffers from the event\n%s", stored[i].Seq, payloads[stored[i].Seq], raw)
		}
	}
}

// TestNATSOff checks --nats off: no bus, and status says so.
func TestNATSOff(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withNATS("off"))
	if d.Status.NATS != "off" {
		t.Errorf("status nats = %q with --nats off, want off", d.Status.NATS)
	}
	c := dial(t, d)
	emit(t, c, "emit app.note quiet")
	d.Stop()
}

// TestNATSSubscribersCannotPublish holds the token and tries to put a forged
// kv.put on the daemon's subject: the server refuses the publish (the token
// user may only subscribe), a subscriber on cairn.audit.> never sees it, and
// the next message that subscriber gets is the real event that follows.
func TestNATSSubscribersCannotPublish(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	b, err := os.ReadFile(filepath.Join(d.Data, "nats.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))

	listener, err := nats.Connect(d.Status.NATS, nats.Token(token), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	msgs := make(chan *nats.Msg, 16)
	sub, err := listener.ChanSubscribe("cairn.audit.>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := listener.Flush(); err != nil {
		t.Fatal(err)
	}

	refused := make(chan error, 4)
	forger, err := nats.Connect(d.Status.NATS, nats.Token(token), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { refused <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	forged := `{"stream":"audit","seq":999999,"kind":"kv.put","subject":"app/x","actor":{"uid":0,"comm":"sshd"},"data":{"value":"evil"}}`
	if err := forger.Publish("cairn.audit.kv.put", []byte(forged)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refused:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("forged publish: %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not refuse the token user's publish on cairn.audit.kv.put")
	}

	c := dial(t, d)
	row := emit(t, c, "emit app.note real")
	select {
	case m := <-msgs:
		var ev struct {
			Seq  int64  `json:"seq"`
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind != "app.note" || ev.Seq != row.Seq {
			t.Fatalf("first message after the forgery: %s, want the real app.note seq %d", m.Data, row.Seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the real event did not arrive")
	}
}
