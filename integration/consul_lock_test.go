package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestConsulLock: consul/api's Lock, held by one client while a second
// waits, handed over on unlock; a Semaphore of two admits two holders;
// sessions are events; a session's end releases its locks.
func TestConsulLock(t *testing.T) {
	t.Parallel()
	d, c := consulDaemon(t)
	_, c2 := c, consulClient(t, d)

	l1, err := c.LockKey("svc/leader")
	if err != nil {
		t.Fatal(err)
	}
	lost1, err := l1.Lock(nil)
	if err != nil || lost1 == nil {
		t.Fatalf("first Lock: %v", err)
	}
	p, _, err := c.KV().Get("svc/leader", nil)
	if err != nil || p == nil || p.Session == "" || p.LockIndex != 1 || p.Flags != api.LockFlagValue {
		t.Fatalf("the lock key: %+v %v, want a session, lock index 1 and Lock's flag", p, err)
	}

	l2, err := c2.LockKey("svc/leader")
	if err != nil {
		t.Fatal(err)
	}
	acquired := make(chan error, 1)
	stop2 := make(chan struct{})
	go func() {
		_, err := l2.Lock(stop2)
		acquired <- err
	}()
	// The second waits in a blocking query on the key; it cannot take it
	// while the first holds it. A write to the key by the holder wakes the
	// waiter, which finds it still held.
	if ok, _, err := c.KV().Acquire(&api.KVPair{Key: "svc/leader", Value: []byte("leader-1"), Session: p.Session, Flags: api.LockFlagValue}, nil); err != nil || !ok {
		t.Fatalf("the holder's re-acquire: %v %v", ok, err)
	}
	select {
	case err := <-acquired:
		t.Fatalf("the second Lock returned while the first held it: %v", err)
	default:
	}
	p2, _, _ := c.KV().Get("svc/leader", nil)
	if p2.Session != p.Session || p2.LockIndex != 1 {
		t.Fatalf("after the holder's re-acquire: %+v", p2)
	}

	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-acquired; err != nil {
		t.Fatalf("the second Lock after the first unlocked: %v", err)
	}
	p3, _, _ := c.KV().Get("svc/leader", nil)
	if p3.Session == "" || p3.Session == p.Session || p3.LockIndex != 2 {
		t.Fatalf("after the hand-over: %+v, want the second session and lock index 2", p3)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2.Destroy()

	// A Semaphore with a limit of 2: two holders, a third waits.
	s1, _ := c.SemaphorePrefix("svc/sema/", 2)
	s2, _ := c2.SemaphorePrefix("svc/sema/", 2)
	s3, _ := c.SemaphorePrefix("svc/sema/", 2)
	for i, s := range []*api.Semaphore{s1, s2} {
		if _, err := s.Acquire(nil); err != nil {
			t.Fatalf("semaphore holder %d: %v", i+1, err)
		}
	}
	third := make(chan error, 1)
	go func() {
		_, err := s3.Acquire(nil)
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("a third holder got a semaphore of 2: %v", err)
	default:
	}
	if err := s1.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatalf("the third after a release: %v", err)
	}
	s2.Release()
	s3.Release()

	// A destroyed session's lock is released in the same event; with
	// behavior delete the key goes.
	se := c.Session()
	id, _, err := se.Create(&api.SessionEntry{Name: "job", Behavior: api.SessionBehaviorDelete, LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := c.KV().Acquire(&api.KVPair{Key: "jobs/lock", Value: []byte("x"), Session: id}, nil); err != nil || !ok {
		t.Fatalf("acquire with a session: %v %v", ok, err)
	}
	if ok, _, err := c2.KV().Acquire(&api.KVPair{Key: "jobs/lock", Value: []byte("y"), Session: id + "x"}, nil); err == nil || ok {
		t.Fatalf("acquire with an unknown session: %v %v, want an error", ok, err)
	}
	info, _, err := se.Info(id, nil)
	if err != nil || info == nil || info.Behavior != "delete" || info.Name != "job" {
		t.Fatalf("session info: %+v %v", info, err)
	}
	if _, err := se.Destroy(id, nil); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := c.KV().Get("jobs/lock", nil); p != nil {
		t.Fatalf("the key of a destroyed delete-session: %+v", p)
	}
	evs := parseNDJSON[httpEvent](t, cliOK(t, d, "-o", "json", "events", "kind=discovery.session.destroy", "subject=session/"+id))
	if len(evs) != 1 || !strings.Contains(strings.Join(anyStrings(evs[0].Data["keys"]), ","), "jobs/lock") {
		t.Fatalf("the session's destroy event: %+v", evs)
	}
	if _, _, err := se.Create(&api.SessionEntry{TTL: "1s"}, nil); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a session TTL of 1s: %v, want a 400 (10s to 24h)", err)
	}
}

func anyStrings(v any) []string {
	xs, _ := v.([]any)
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
