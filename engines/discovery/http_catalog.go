package discovery

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/consul/api"
)

// nodeID is a stable UUID-shaped id of the node, from its name.
func (m *Module) nodeID() string {
	b := sha256.Sum256([]byte("cairn-node:" + m.node))
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (m *Module) apiNode() *api.Node {
	return &api.Node{ID: m.nodeID(), Node: m.node, Address: m.nodeAddress(), Datacenter: datacenter,
		TaggedAddresses: map[string]string{"lan": m.nodeAddress(), "wan": m.nodeAddress()}, Meta: map[string]string{}, CreateIndex: 1, ModifyIndex: 1}
}

func (m *Module) agentService(s *service) *api.AgentService {
	return &api.AgentService{ID: s.ID, Service: s.Name, Tags: orEmpty(s.Tags), Meta: orEmptyMap(s.Meta), Port: s.Port, Address: s.Address,
		Weights: api.AgentWeights{Passing: 1, Warning: 1}, EnableTagOverride: s.EnableTagOverride,
		CreateIndex: uint64(s.CreateIndex), ModifyIndex: uint64(s.ModifyIndex), Datacenter: datacenter}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// healthCheck is a check as Consul's health endpoints show it; the
// mirror's lock is held.
func (m *Module) healthCheck(c *check) *api.HealthCheck {
	h := &api.HealthCheck{Node: m.node, CheckID: c.ID, Name: c.Name, Status: c.Status, Notes: c.Notes,
		Output: m.checks.output(c), ServiceID: c.ServiceID, ServiceName: c.ServiceName, ServiceTags: []string{}, Type: c.Type,
		CreateIndex: uint64(c.CreateIndex), ModifyIndex: uint64(c.ModifyIndex)}
	if s, ok := m.mir.services[c.ServiceID]; ok {
		h.ServiceTags = orEmpty(s.Tags)
	}
	h.Definition = api.HealthCheckDefinition{HTTP: c.HTTP, Header: c.Header, Method: c.Method, Body: c.Body, TLSSkipVerify: c.TLSSkipVerify, TCP: c.TCP,
		IntervalDuration: time.Duration(c.Interval), TimeoutDuration: time.Duration(c.Timeout), DeregisterCriticalServiceAfterDuration: time.Duration(c.DeregisterAfter)}
	if c.Type == checkTTL {
		h.Definition = api.HealthCheckDefinition{}
	}
	return h
}

// serfCheck is the node's serfHealth check: cairn is one node, alive.
func (m *Module) serfCheck() *api.HealthCheck {
	return &api.HealthCheck{Node: m.node, CheckID: serfHealth, Name: "Serf Health Status", Status: statePassing,
		Output: "Agent alive and reachable", ServiceTags: []string{}, CreateIndex: 1, ModifyIndex: 1}
}

// entries are a service's instances with their checks and the node's,
// those with a non-passing check left out when passingOnly; instances
// must carry every tag asked. The mirror's lock is held.
func (m *Module) entries(name string, tags []string, passingOnly bool) []*api.ServiceEntry {
	out := []*api.ServiceEntry{}
	for _, s := range m.mir.servicesNamed(name) {
		if !hasTags(s.Tags, tags) {
			continue
		}
		cs := m.mir.checksOf(s.ID)
		if passingOnly && aggregate(cs) != statePassing {
			continue
		}
		hcs := api.HealthChecks{m.serfCheck()}
		for _, c := range cs {
			hcs = append(hcs, m.healthCheck(c))
		}
		out = append(out, &api.ServiceEntry{Node: m.apiNode(), Service: m.agentService(s), Checks: hcs})
	}
	return out
}

func hasTags(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// catalogIndex is the index of the catalog's service and check tables.
func (m *Module) catalogIndex() int64 { return m.mir.index(tabService, tabCheck) }

func (m *Module) agentServices(w http.ResponseWriter, r *http.Request) {
	m.mir.read(func() {
		out := map[string]*api.AgentService{}
		for id, s := range m.mir.services {
			out[id] = m.agentService(s)
		}
		writeJSON(w, out)
	})
}

func (m *Module) agentServiceGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m.blocking(w, r, func() (int64, func()) {
		s, ok := m.mir.services[id]
		if !ok {
			return m.catalogIndex(), func() {
				http.Error(w, fmt.Sprintf("unknown service ID: %s", id), http.StatusNotFound)
			}
		}
		as := m.agentService(s)
		return s.ModifyIndex, func() { writeJSON(w, as) }
	})
}

func (m *Module) agentChecks(w http.ResponseWriter, r *http.Request) {
	m.mir.read(func() {
		out := map[string]*api.AgentCheck{}
		for id, c := range m.mir.checks {
			h := m.healthCheck(c)
			out[id] = &api.AgentCheck{Node: h.Node, CheckID: h.CheckID, Name: h.Name, Status: h.Status, Notes: h.Notes, Output: h.Output,
				ServiceID: h.ServiceID, ServiceName: h.ServiceName, Type: h.Type, Definition: h.Definition}
		}
		writeJSON(w, out)
	})
}

func (m *Module) agentSelf(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{
		"Config": map[string]any{"Datacenter": datacenter, "NodeName": m.node, "NodeID": m.nodeID(), "Server": true,
			"Revision": "cairn", "Version": consulVersion, "PrimaryDatacenter": datacenter},
		"Member": m.member(),
		"Meta":   map[string]string{},
	})
}

func (m *Module) member() map[string]any {
	return map[string]any{"Name": m.node, "Addr": m.nodeAddress(), "Port": 8301, "Status": 1,
		"Tags": map[string]string{"dc": datacenter, "role": "consul", "id": m.nodeID()}}
}

func (m *Module) agentMembers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, []any{m.member()})
}

func (m *Module) catalogDatacenters(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, []string{datacenter})
}

func (m *Module) catalogServices(w http.ResponseWriter, r *http.Request) {
	m.blocking(w, r, func() (int64, func()) {
		out := map[string][]string{}
		for _, s := range m.mir.services {
			tags := out[s.Name]
			if tags == nil {
				tags = []string{}
			}
			for _, t := range s.Tags {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
			sort.Strings(tags)
			out[s.Name] = tags
		}
		return m.mir.index(tabService), func() { writeJSON(w, out) }
	})
}

func (m *Module) catalogService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	tags := r.URL.Query()["tag"]
	m.blocking(w, r, func() (int64, func()) {
		out := []*api.CatalogService{}
		n := m.apiNode()
		for _, s := range m.mir.servicesNamed(name) {
			if !hasTags(s.Tags, tags) {
				continue
			}
			out = append(out, &api.CatalogService{ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: datacenter,
				TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta, ServiceID: s.ID, ServiceName: s.Name, ServiceAddress: s.Address,
				ServiceTags: orEmpty(s.Tags), ServiceMeta: orEmptyMap(s.Meta), ServicePort: s.Port,
				ServiceWeights: api.Weights{Passing: 1, Warning: 1}, ServiceEnableTagOverride: s.EnableTagOverride,
				CreateIndex: uint64(s.CreateIndex), ModifyIndex: uint64(s.ModifyIndex)})
		}
		return m.mir.index(tabService), func() { writeJSON(w, out) }
	})
}

func (m *Module) catalogNodes(w http.ResponseWriter, r *http.Request) {
	m.blocking(w, r, func() (int64, func()) {
		n := m.apiNode()
		return 1, func() { writeJSON(w, []*api.Node{n}) }
	})
}

func (m *Module) healthService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	_, passing := q["passing"]
	if v := q.Get("passing"); v == "false" || v == "0" {
		passing = false
	}
	tags := q["tag"]
	m.blocking(w, r, func() (int64, func()) {
		out := m.entries(name, tags, passing)
		return m.catalogIndex(), func() { writeJSON(w, out) }
	})
}

func (m *Module) healthChecks(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	m.blocking(w, r, func() (int64, func()) {
		out := api.HealthChecks{}
		for _, c := range m.sortedChecks() {
			if c.ServiceName == name {
				out = append(out, m.healthCheck(c))
			}
		}
		return m.mir.index(tabCheck), func() { writeJSON(w, out) }
	})
}

func (m *Module) healthNode(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	m.blocking(w, r, func() (int64, func()) {
		out := api.HealthChecks{}
		if node == m.node {
			out = append(out, m.serfCheck())
			for _, c := range m.sortedChecks() {
				out = append(out, m.healthCheck(c))
			}
		}
		return m.mir.index(tabCheck), func() { writeJSON(w, out) }
	})
}

func (m *Module) healthState(w http.ResponseWriter, r *http.Request) {
	state := r.PathValue("state")
	switch state {
	case "any", statePassing, stateWarning, stateCritical:
	default:
		http.Error(w, fmt.Sprintf("Invalid check state: %q", state), http.StatusBadRequest)
		return
	}
	m.blocking(w, r, func() (int64, func()) {
		out := api.HealthChecks{}
		if state == "any" || state == statePassing {
			out = append(out, m.serfCheck())
		}
		for _, c := range m.sortedChecks() {
			if state == "any" || c.Status == state {
				out = append(out, m.healthCheck(c))
			}
		}
		return m.mir.index(tabCheck), func() { writeJSON(w, out) }
	})
}

// sortedChecks are every check, by id; the mirror's lock is held.
func (m *Module) sortedChecks() []*check {
	out := make([]*check, 0, len(m.mir.checks))
	for _, id := range sortedKeys(m.mir.checks) {
		out = append(out, m.mir.checks[id])
	}
	return out
}
