package discovery

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// serfHealth is the node check every session names by default. cairn has
// no gossip: the node's own check always passes.
const serfHealth = "serfHealth"

// Session TTL bounds, Consul's.
const (
	minSessionTTL = 10 * time.Second
	maxSessionTTL = 24 * time.Hour
	// sessionTTLMultiplier: a session is invalidated after twice its TTL
	// without a renewal, as Consul does.
	sessionTTLMultiplier = 2
	defaultLockDelay     = 15 * time.Second
)

// sessionTimers holds the deadlines of sessions with a TTL, in memory: a
// restart gives every session a fresh TTL, as a Consul leader change does.
type sessionTimers struct {
	m    *Module
	mu   sync.Mutex
	due  map[string]time.Time
	kick chan struct{}
}

func newSessionTimers(m *Module) *sessionTimers {
	return &sessionTimers{m: m, due: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// renew sets a session's deadline from now.
func (t *sessionTimers) renew(id string, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	t.mu.Lock()
	t.due[id] = time.Now().Add(ttl * sessionTTLMultiplier)
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *sessionTimers) forget(id string) {
	t.mu.Lock()
	delete(t.due, id)
	t.mu.Unlock()
}

// run destroys sessions whose TTL passed, until ctx ends. It sleeps until
// the next deadline.
func (t *sessionTimers) run(ctx context.Context) {
	var ttls []struct {
		id  string
		ttl time.Duration
	}
	t.m.mir.read(func() {
		for id, s := range t.m.mir.sessions {
			if d, err := time.ParseDuration(s.TTL); err == nil && d > 0 {
				ttls = append(ttls, struct {
					id  string
					ttl time.Duration
				}{id, d})
			}
		}
	})
	for _, e := range ttls {
		t.renew(e.id, e.ttl)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		next := now.Add(time.Hour)
		var expired []string
		t.mu.Lock()
		for id, d := range t.due {
			if !d.After(now) {
				expired = append(expired, id)
				delete(t.due, id)
			} else if d.Before(next) {
				next = d
			}
		}
		t.mu.Unlock()
		for _, id := range expired {
			if err := t.m.destroySession(ctx, journal.SystemActor(), id, "ttl"); err != nil && ctx.Err() == nil {
				if _, gone := err.(*notFound); !gone {
					t.m.log.Warn("discovery: expire a session", "session", id, "err", err)
				}
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-t.kick:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// checkCritical invalidates the sessions that name a check gone critical.
func (t *sessionTimers) checkCritical(ctx context.Context, checkID string) {
	var ids []string
	t.m.mir.read(func() {
		for id, s := range t.m.mir.sessions {
			if slices.Contains(s.Checks, checkID) {
				ids = append(ids, id)
			}
		}
	})
	for _, id := range ids {
		if err := t.m.destroySession(ctx, journal.SystemActor(), id, "check "+checkID+" critical"); err != nil && ctx.Err() == nil {
			t.m.log.Warn("discovery: invalidate a session", "session", id, "err", err)
		}
	}
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// createSession records a new session; its checks must exist.
func (m *Module) createSession(ctx context.Context, actor journal.Actor, s *session) (string, error) {
	if s.Behavior == "" {
		s.Behavior = behaviorRelease
	}
	if s.Behavior != behaviorRelease && s.Behavior != behaviorDelete {
		return "", badf("Invalid Behavior setting '%s'", s.Behavior)
	}
	var ttl time.Duration
	if s.TTL != "" {
		d, err := time.ParseDuration(s.TTL)
		if err != nil {
			return "", badf("Session TTL '%s' invalid: %v", s.TTL, err)
		}
		if d != 0 && (d < minSessionTTL || d > maxSessionTTL) {
			return "", badf("Invalid Session TTL '%s', must be between [%v=%v]", s.TTL, minSessionTTL, maxSessionTTL)
		}
		ttl = d
	}
	if s.Node == "" {
		s.Node = m.node
	}
	if s.Node != m.node {
		return "", badf("Failed to create session: Missing node registration for %q (cairn serves one node, %q)", s.Node, m.node)
	}
	s.ID = newSessionID()
	_, _, err := m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		for _, c := range s.Checks {
			if c == serfHealth {
				continue
			}
			var ch check
			ok, err := r.get(tabCheck, c, &ch)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, badf("Missing check '%s' registration", c)
			}
			if ch.Status == stateCritical {
				return nil, badf("Check '%s' is in critical state", c)
			}
		}
		s.CreateIndex, s.ModifyIndex = seq, seq
		data := map[string]any{"id": s.ID, "behavior": s.Behavior}
		if s.Name != "" {
			data["name"] = s.Name
		}
		if s.TTL != "" {
			data["ttl"] = s.TTL
		}
		return &change{Kind: KindSessionCreate, Subject: "session/" + s.ID, Ops: []op{{Table: tabSession, ID: s.ID, Rec: recordOf(s)}}, Data: data}, nil
	})
	if err != nil {
		return "", err
	}
	m.sess.renew(s.ID, ttl)
	return s.ID, nil
}

// destroySession ends a session: the keys it holds are released, or
// deleted when its behaviour is delete, in the same event; they then sit
// in the session's lock delay.
func (m *Module) destroySession(ctx context.Context, actor journal.Actor, id, reason string) error {
	var delay time.Duration
	var keys []string
	_, _, err := m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		var s session
		ok, err := r.get(tabSession, id, &s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &notFound{fmt.Sprintf("Session %q not found", id)}
		}
		ops := []op{{Table: tabSession, ID: id}}
		keys = keys[:0]
		err = r.each(tabKV, "", func(k string, b []byte) error {
			var e kvEntry
			if err := parseRecord(b, &e); err != nil {
				return err
			}
			if e.Session != id {
				return nil
			}
			keys = append(keys, k)
			if s.Behavior == behaviorDelete {
				ops = append(ops, op{Table: tabKV, ID: k})
			} else {
				e.Session, e.ModifyIndex = "", seq
				ops = append(ops, op{Table: tabKV, ID: k, Rec: recordOf(&e)})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		delay = time.Duration(s.LockDelay)
		data := map[string]any{"id": id}
		if reason != "" {
			data["reason"] = reason
		}
		if len(keys) > 0 {
			data["keys"] = stringsAny(keys)
		}
		return &change{Kind: KindSessionDestroy, Subject: "session/" + id, Ops: ops, Data: data}, nil
	})
	if err != nil {
		return err
	}
	m.sess.forget(id)
	m.setLockDelay(keys, delay)
	return nil
}
