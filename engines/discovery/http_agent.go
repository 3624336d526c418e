package discovery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/consul/api"
)

func (m *Module) agentServiceRegister(w http.ResponseWriter, r *http.Request) {
	var reg api.AgentServiceRegistration
	if err := decodeDefinition(w, r, &reg); err != nil {
		m.httpError(w, err)
		return
	}
	actor, err := m.allowWrite(r, "service register", map[string]string{"NAME": reg.Name})
	if err != nil {
		m.httpError(w, err)
		return
	}
	if err := m.registerService(r.Context(), actor, &reg); err != nil {
		m.httpError(w, err)
	}
}

func (m *Module) agentServiceDeregister(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	actor, err := m.allowWrite(r, "service deregister", map[string]string{"ID": id})
	if err != nil {
		m.httpError(w, err)
		return
	}
	if err := m.deregisterService(r.Context(), actor, id, ""); err != nil {
		m.httpError(w, err)
	}
}

func (m *Module) agentCheckRegister(w http.ResponseWriter, r *http.Request) {
	var reg api.AgentCheckRegistration
	if err := decodeDefinition(w, r, &reg); err != nil {
		m.httpError(w, err)
		return
	}
	actor, err := m.allowWrite(r, "check register", map[string]string{"NAME": reg.Name})
	if err != nil {
		m.httpError(w, err)
		return
	}
	if err := m.registerCheck(r.Context(), actor, &reg); err != nil {
		m.httpError(w, err)
	}
}

func (m *Module) agentCheckDeregister(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	actor, err := m.allowWrite(r, "check deregister", map[string]string{"ID": id})
	if err != nil {
		m.httpError(w, err)
		return
	}
	if err := m.deregisterCheck(r.Context(), actor, id); err != nil {
		m.httpError(w, err)
	}
}

// checkUpdate is the body of /v1/agent/check/update.
type checkUpdate struct {
	Status string
	Output string
}

// agentCheckTTL is pass, warn, fail (status set) and update (status from
// the body) of a TTL check: it resets the check's TTL and records its
// state when it changed.
func (m *Module) agentCheckTTL(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		actor, err := m.allowWrite(r, "check update", map[string]string{"ID": id})
		if err != nil {
			m.httpError(w, err)
			return
		}
		output := r.URL.Query().Get("note")
		if status == "" {
			var u checkUpdate
			if err := decode(w, r, &u); err != nil {
				m.httpError(w, err)
				return
			}
			switch u.Status {
			case statePassing, stateWarning, stateCritical:
			default:
				http.Error(w, fmt.Sprintf("Invalid check status: %q", u.Status), http.StatusBadRequest)
				return
			}
			status, output = u.Status, u.Output
		}
		var c *check
		m.mir.read(func() {
			if cc, ok := m.mir.checks[id]; ok {
				cp := *cc
				c = &cp
			}
		})
		if c == nil {
			http.Error(w, fmt.Sprintf("Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id), http.StatusNotFound)
			return
		}
		if c.Type != checkTTL {
			http.Error(w, fmt.Sprintf("CheckID %q does not have associated TTL", id), http.StatusInternalServerError)
			return
		}
		m.checks.resetTTL(id)
		if _, err := m.setCheckState(r.Context(), actor, id, status, output); err != nil {
			m.httpError(w, err)
		}
	}
}

// sessionBody is what /v1/session/create accepts: api.SessionEntry, with
// LockDelay as a number (seconds below 1000, else nanoseconds, as
// Consul) or a duration string.
type sessionBody struct {
	Name          string
	Node          string
	LockDelay     json.RawMessage
	Behavior      string
	TTL           string
	Checks        []string
	NodeChecks    []string
	ServiceChecks []api.ServiceCheck
	Namespace     string
	ID            string
	CreateIndex   uint64
	ModifyIndex   uint64
}

func lockDelayOf(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return defaultLockDelay, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, badf("Request decode failed: LockDelay %q: %v", s, err)
		}
		return d, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, badf("Request decode failed: LockDelay: %v", err)
	}
	if f < 1000 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.Duration(f), nil
}

func (m *Module) sessionCreate(w http.ResponseWriter, r *http.Request) {
	actor, err := m.allowWrite(r, "session create", nil)
	if err != nil {
		m.httpError(w, err)
		return
	}
	var b sessionBody
	if r.ContentLength != 0 {
		if err := decode(w, r, &b); err != nil {
			m.httpError(w, err)
			return
		}
	}
	delay, err := lockDelayOf(b.LockDelay)
	if err != nil {
		m.httpError(w, err)
		return
	}
	checks := append(append([]string(nil), b.Checks...), b.NodeChecks...)
	for _, sc := range b.ServiceChecks {
		checks = append(checks, sc.ID)
	}
	if b.Checks == nil && b.NodeChecks == nil && b.ServiceChecks == nil {
		checks = []string{serfHealth}
	}
	s := &session{Name: b.Name, Node: b.Node, LockDelay: int64(delay), Behavior: b.Behavior, TTL: b.TTL, Checks: checks}
	id, err := m.createSession(r.Context(), actor, s)
	if err != nil {
		m.httpError(w, err)
		return
	}
	writeJSON(w, map[string]string{"ID": id})
}

func (m *Module) sessionDestroy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	actor, err := m.allowWrite(r, "session destroy", map[string]string{"ID": id})
	if err != nil {
		m.httpError(w, err)
		return
	}
	err = m.destroySession(r.Context(), actor, id, "")
	if _, gone := err.(*notFound); err != nil && !gone {
		m.httpError(w, err)
		return
	}
	writeBool(w, true)
}

func (m *Module) sessionEntry(s *session) *api.SessionEntry {
	return &api.SessionEntry{CreateIndex: uint64(s.CreateIndex), ID: s.ID, Name: s.Name, Node: s.Node,
		LockDelay: time.Duration(s.LockDelay), Behavior: s.Behavior, TTL: s.TTL, Checks: orEmpty(s.Checks), NodeChecks: orEmpty(s.Checks),
		ServiceChecks: []api.ServiceCheck{}}
}

func (m *Module) sessionRenew(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := m.allowWrite(r, "session renew", map[string]string{"ID": id}); err != nil {
		m.httpError(w, err)
		return
	}
	var e *api.SessionEntry
	var ttl time.Duration
	m.mir.read(func() {
		if s, ok := m.mir.sessions[id]; ok {
			e = m.sessionEntry(s)
			ttl, _ = time.ParseDuration(s.TTL)
		}
	})
	if e == nil {
		http.Error(w, fmt.Sprintf("Session id '%s' not found", id), http.StatusNotFound)
		return
	}
	m.sess.renew(id, ttl)
	writeJSON(w, []*api.SessionEntry{e})
}

func (m *Module) sessionInfo(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m.blocking(w, r, func() (int64, func()) {
		out := []*api.SessionEntry{}
		if s, ok := m.mir.sessions[id]; ok {
			out = append(out, m.sessionEntry(s))
		}
		return m.mir.index(tabSession), func() { writeJSON(w, out) }
	})
}

func (m *Module) sessionList(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	m.blocking(w, r, func() (int64, func()) {
		out := []*api.SessionEntry{}
		for _, id := range sortedKeys(m.mir.sessions) {
			if s := m.mir.sessions[id]; node == "" || s.Node == node {
				out = append(out, m.sessionEntry(s))
			}
		}
		return m.mir.index(tabSession), func() { writeJSON(w, out) }
	})
}
