package discovery

import (
	"context"
	"fmt"
	"net"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnhq/cairn/journal"
)

// badRequest is an error Consul answers with 400 and its text.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// notFound is an error Consul answers with 404 and its text.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// serviceSubject is the subject of a service's events: `audit who
// service/web` lists its registrations and its checks' transitions.
func serviceSubject(name string) string { return "service/" + name }

func checkSubject(c *check) string {
	if c.ServiceName != "" {
		return serviceSubject(c.ServiceName)
	}
	return "check/" + c.ID
}

// parseDur reads a Consul duration ("10s"); "" is 0.
func parseDur(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badf("Invalid check: %s %q: %v", field, s, err)
	}
	return d, nil
}

// checkFrom turns a check definition into a check, validated as Consul
// validates it. actor is who registered it: a script check runs as them.
func checkFrom(def *api.AgentServiceCheck, id, name string, actor journal.Actor) (*check, error) {
	c := &check{ID: id, Name: name, Notes: def.Notes, Status: def.Status}
	if c.Status == "" {
		c.Status = stateCritical
	}
	switch c.Status {
	case statePassing, stateWarning, stateCritical:
	default:
		return nil, badf("Invalid check: invalid initial status %q", def.Status)
	}
	var err error
	var interval, timeout, ttl, dereg time.Duration
	if interval, err = parseDur("Interval", def.Interval); err != nil {
		return nil, err
	}
	if timeout, err = parseDur("Timeout", def.Timeout); err != nil {
		return nil, err
	}
	if ttl, err = parseDur("TTL", def.TTL); err != nil {
		return nil, err
	}
	if dereg, err = parseDur("DeregisterCriticalServiceAfter", def.DeregisterCriticalServiceAfter); err != nil {
		return nil, err
	}
	kinds := 0
	switch {
	case def.TTL != "":
		kinds++
		c.Type = checkTTL
		if ttl <= 0 {
			return nil, badf("Invalid check: TTL must be > 0 for TTL checks")
		}
	}
	if def.HTTP != "" {
		kinds++
		c.Type, c.HTTP, c.Method, c.Header, c.Body, c.TLSSkipVerify = checkHTTP, def.HTTP, def.Method, def.Header, def.Body, def.TLSSkipVerify
	}
	if def.TCP != "" {
		kinds++
		c.Type, c.TCP = checkTCP, def.TCP
	}
	if len(def.Args) > 0 {
		kinds++
		c.Type, c.Args = checkScript, def.Args
		c.RunAsUID, c.RunAsGID = actor.UID, actor.GID
		if c.RunAsGID < 0 {
			c.RunAsGID = primaryGID(actor.UID)
		}
		if c.RunAsUID < 0 {
			return nil, badf("Invalid check: a script check runs as the caller that registers it, and this caller has no local uid")
		}
	}
	switch {
	case kinds == 0:
		if def.GRPC != "" || def.UDP != "" || def.H2PING != "" || def.DockerContainerID != "" || def.AliasService != "" || def.AliasNode != "" {
			return nil, badf("Invalid check: only TTL, HTTP, TCP and script (Args) checks are implemented by cairn")
		}
		return nil, badf("Invalid check: must be one of Script, HTTP, TCP, UDP, H2PING, gRPC, Alias, or TTL type")
	case kinds > 1:
		return nil, badf("Invalid check: must be one of Script, HTTP, TCP, UDP, H2PING, gRPC, Alias, or TTL type")
	}
	if c.Type != checkTTL && interval <= 0 {
		return nil, badf("Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks")
	}
	if c.Type != checkTTL && interval < time.Second {
		interval = time.Second // Consul's MinInterval
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
		if c.Type == checkScript {
			timeout = 30 * time.Second
		}
	}
	c.Interval, c.Timeout, c.TTL, c.DeregisterAfter = int64(interval), int64(timeout), int64(ttl), int64(dereg)
	return c, nil
}

// primaryGID is uid's primary group, or uid itself when the user database
// does not know it.
func primaryGID(uid int) int {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if g, err := strconv.Atoi(u.Gid); err == nil {
			return g
		}
	}
	return uid
}

// serviceChecks builds a registration's checks with Consul's ids:
// CheckID, else "service:ID" (with ":N" when there are several).
func serviceChecks(reg *api.AgentServiceRegistration, svcID string, actor journal.Actor) ([]*check, error) {
	defs := append([]*api.AgentServiceCheck(nil), reg.Checks...)
	if reg.Check != nil {
		defs = append([]*api.AgentServiceCheck{reg.Check}, defs...)
	}
	var out []*check
	for i, def := range defs {
		if def == nil {
			continue
		}
		id := def.CheckID
		if id == "" {
			id = "service:" + svcID
			if len(defs) > 1 {
				id += ":" + strconv.Itoa(i+1)
			}
		}
		name := def.Name
		if name == "" {
			name = fmt.Sprintf("Service '%s' check", reg.Name)
		}
		c, err := checkFrom(def, id, name, actor)
		if err != nil {
			return nil, err
		}
		c.ServiceID, c.ServiceName = svcID, reg.Name
		out = append(out, c)
	}
	return out, nil
}

// registerService records a service registration with its checks. An
// existing check of the same id keeps its state.
func (m *Module) registerService(ctx context.Context, actor journal.Actor, reg *api.AgentServiceRegistration) error {
	if reg.Name == "" {
		return badf("Missing service name")
	}
	if reg.Kind != "" || reg.Connect != nil || reg.Proxy != nil {
		return badf("Connect proxies and gateways are not implemented by cairn")
	}
	id := reg.ID
	if id == "" {
		id = reg.Name
	}
	if reg.Port < 0 || reg.Port > 65535 {
		return badf("Invalid service port %d", reg.Port)
	}
	checks, err := serviceChecks(reg, id, actor)
	if err != nil {
		return err
	}
	_, _, err = m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		s := &service{ID: id, Name: reg.Name, Tags: reg.Tags, Address: reg.Address, Port: reg.Port, Meta: reg.Meta,
			EnableTagOverride: reg.EnableTagOverride, CreateIndex: seq, ModifyIndex: seq}
		var old service
		if ok, err := r.get(tabService, id, &old); err != nil {
			return nil, err
		} else if ok {
			s.CreateIndex = old.CreateIndex
		}
		ops := []op{{Table: tabService, ID: id, Rec: recordOf(s)}}
		var ids []string
		for _, c := range checks {
			if err := m.keepState(r, c, seq); err != nil {
				return nil, err
			}
			ops = append(ops, op{Table: tabCheck, ID: c.ID, Rec: recordOf(c)})
			ids = append(ids, c.ID)
		}
		data := map[string]any{"id": id, "name": reg.Name, "port": int64(reg.Port)}
		if reg.Address != "" {
			data["address"] = reg.Address
		}
		if len(reg.Tags) > 0 {
			data["tags"] = stringsAny(reg.Tags)
		}
		if len(ids) > 0 {
			data["checks"] = stringsAny(ids)
		}
		return &change{Kind: KindServiceRegister, Subject: serviceSubject(reg.Name), Ops: ops, Data: data}, nil
	})
	return err
}

// keepState gives c the indexes of the check it replaces and, unless the
// registration set a status, its state.
func (m *Module) keepState(r reader, c *check, seq int64) error {
	c.DefIndex, c.CreateIndex, c.ModifyIndex = seq, seq, seq
	var old check
	ok, err := r.get(tabCheck, c.ID, &old)
	if err != nil || !ok {
		return err
	}
	c.CreateIndex = old.CreateIndex
	c.Status, c.Output = old.Status, old.Output
	return nil
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// deregisterService removes a service instance and its checks.
func (m *Module) deregisterService(ctx context.Context, actor journal.Actor, id, reason string) error {
	_, _, err := m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		var s service
		ok, err := r.get(tabService, id, &s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &notFound{fmt.Sprintf("Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id)}
		}
		ops := []op{{Table: tabService, ID: id}}
		err = r.each(tabCheck, "", func(cid string, b []byte) error {
			var c check
			if err := parseRecord(b, &c); err != nil {
				return err
			}
			if c.ServiceID == id {
				ops = append(ops, op{Table: tabCheck, ID: cid})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		data := map[string]any{"id": id, "name": s.Name}
		if reason != "" {
			data["reason"] = reason
		}
		return &change{Kind: KindServiceDeregister, Subject: serviceSubject(s.Name), Ops: ops, Data: data}, nil
	})
	return err
}

// registerCheck records a check of the node or of a service instance.
func (m *Module) registerCheck(ctx context.Context, actor journal.Actor, reg *api.AgentCheckRegistration) error {
	if reg.Name == "" {
		return badf("Missing check name")
	}
	id := reg.ID
	if id == "" {
		id = reg.CheckID
	}
	if id == "" {
		id = reg.Name
	}
	def := reg.AgentServiceCheck
	if def.Notes == "" {
		def.Notes = reg.Notes
	}
	c, err := checkFrom(&def, id, reg.Name, actor)
	if err != nil {
		return err
	}
	_, _, err = m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		if reg.ServiceID != "" {
			var s service
			ok, err := r.get(tabService, reg.ServiceID, &s)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, badf("ServiceID %q does not exist", reg.ServiceID)
			}
			c.ServiceID, c.ServiceName = s.ID, s.Name
		}
		if err := m.keepState(r, c, seq); err != nil {
			return nil, err
		}
		data := map[string]any{"id": c.ID, "name": c.Name, "type": c.Type, "status": c.Status}
		if c.ServiceID != "" {
			data["service_id"] = c.ServiceID
		}
		return &change{Kind: KindCheckRegister, Subject: checkSubject(c), Ops: []op{{Table: tabCheck, ID: c.ID, Rec: recordOf(c)}}, Data: data}, nil
	})
	return err
}

// deregisterCheck removes a check.
func (m *Module) deregisterCheck(ctx context.Context, actor journal.Actor, id string) error {
	_, _, err := m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		var c check
		ok, err := r.get(tabCheck, id, &c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &notFound{fmt.Sprintf("Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id)}
		}
		return &change{Kind: KindCheckDeregister, Subject: checkSubject(&c), Ops: []op{{Table: tabCheck, ID: id}}, Data: map[string]any{"id": id}}, nil
	})
	return err
}

// setCheckState records a check's state when it changed: one
// discovery.check event from → to with the output. The output alone
// changing is kept in memory, not journaled.
func (m *Module) setCheckState(ctx context.Context, actor journal.Actor, id, status, output string) (changed bool, err error) {
	m.checks.setOutput(id, output)
	// The common case, a probe that finds the state it had, costs no
	// trip through the committer. (The mirror holds every write committed
	// before this read; a later change is decided below, in order.)
	same := false
	m.mir.read(func() {
		c, ok := m.mir.checks[id]
		same = ok && c.Status == status
	})
	if same {
		return false, nil
	}
	reply, _, err := m.propose(ctx, actor, func(r reader, seq int64) (*change, error) {
		var c check
		ok, err := r.get(tabCheck, id, &c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &notFound{fmt.Sprintf("Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id)}
		}
		if c.Status == status {
			return nil, nil
		}
		from := c.Status
		c.Status, c.Output, c.ModifyIndex = status, truncate(output, 1024), seq
		data := map[string]any{"id": id, "from": from, "to": status, "output": truncate(output, 1024)}
		if c.ServiceID != "" {
			data["service_id"] = c.ServiceID
		}
		return &change{Kind: KindCheck, Subject: checkSubject(&c), Ops: []op{{Table: tabCheck, ID: id, Rec: recordOf(&c)}}, Data: data, Reply: true}, nil
	})
	if err != nil {
		return false, err
	}
	changed, _ = reply.(bool)
	if changed && status == stateCritical {
		m.sess.checkCritical(ctx, id)
	}
	return changed, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + " ... (truncated)"
}

// Registry is what the module offers other modules as
// "services": register and deregister a service instance, as
// the caller's actor.
type Registry struct{ m *Module }

// Register registers a service instance with an optional HTTP or TCP
// check probed every interval.
func (g Registry) Register(ctx context.Context, actor journal.Actor, id, name, address string, port int, tags []string, checkHTTP, checkTCP string, interval time.Duration) error {
	reg := &api.AgentServiceRegistration{ID: id, Name: name, Address: address, Port: port, Tags: tags}
	if checkHTTP != "" || checkTCP != "" {
		reg.Check = &api.AgentServiceCheck{HTTP: checkHTTP, TCP: checkTCP, Interval: interval.String()}
	}
	return g.m.registerService(ctx, actor, reg)
}

// Deregister removes a service instance.
func (g Registry) Deregister(ctx context.Context, actor journal.Actor, id string) error {
	return g.m.deregisterService(ctx, actor, id, "")
}

// KVGet reads a key of the Consul KV store: its value and flags.
func (g Registry) KVGet(key string) (value []byte, flags uint64, found bool) {
	g.m.mir.read(func() {
		if e, ok := g.m.mir.kv[key]; ok {
			value, flags, found = append([]byte(nil), e.Value...), e.Flags, true
		}
	})
	return value, flags, found
}

// KVList reads the keys under prefix with their values.
func (g Registry) KVList(prefix string) map[string][]byte {
	out := map[string][]byte{}
	g.m.mir.read(func() {
		for _, e := range g.m.mir.kvList(prefix) {
			out[e.Key] = append([]byte(nil), e.Value...)
		}
	})
	return out
}

// KVPut sets a key of the Consul KV store, as actor: a consul_kv event.
func (g Registry) KVPut(ctx context.Context, actor journal.Actor, key string, value []byte, flags uint64) error {
	if key == "" {
		return badf("Missing key name")
	}
	_, err := g.m.kvWrite(ctx, actor, kvWrite{Verb: "set", Key: key, Value: value, Flags: flags})
	return err
}

// KVDelete deletes a key of the Consul KV store, as actor.
func (g Registry) KVDelete(ctx context.Context, actor journal.Actor, key string) error {
	_, err := g.m.kvWrite(ctx, actor, kvWrite{Verb: "delete", Key: key})
	return err
}

// Service reads a registered service instance by id.
func (g Registry) Service(id string) (name, address string, port int, tags []string, found bool) {
	g.m.mir.read(func() {
		if s, ok := g.m.mir.services[id]; ok {
			name, address, port, tags, found = s.Name, s.Address, s.Port, append([]string(nil), s.Tags...), true
		}
	})
	return name, address, port, tags, found
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// splitTags is the tags of a DSL option list.
func splitTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Tagged lists the instances of every service with tag, by service name:
// HOST:PORT each (the node's address when the instance gives none), as
// Prometheus's consul_sd finds them for a tag. The metrics engine scrapes
// the services tagged prometheus.
func (g Registry) Tagged(tag string) map[string][]string {
	out := map[string][]string{}
	g.m.mir.read(func() {
		for _, s := range g.m.mir.services {
			if !slices.Contains(s.Tags, tag) || s.Port == 0 {
				continue
			}
			addr := s.Address
			if addr == "" {
				addr = g.m.nodeAddress()
			}
			out[s.Name] = append(out[s.Name], net.JoinHostPort(addr, strconv.Itoa(s.Port)))
		}
	})
	for _, addrs := range out {
		slices.Sort(addrs)
	}
	return out
}
