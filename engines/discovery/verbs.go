package discovery

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
)

// Verbs are the module's verbs over the same state the HTTP API serves,
// sorted.
func (m *Module) Verbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "check list",
			Access:  dsl.AccessRead,
			Summary: "list the health checks and their states",
			Help:    "check list answers one row per check: id, name, service, type, status, output.\n\n  check list\n  check list state=critical",
			Options: []dsl.Option{{Name: "state", Meta: "STATE", Help: "only checks in STATE (passing, warning, critical)"}},
		}, Run: m.runCheckList},
		{Spec: dsl.Spec{
			Verb:    "health",
			Access:  dsl.AccessRead,
			Summary: "the instances of a service with their aggregate health",
			Help:    "health NAME answers one row per instance of the service: id, address, port, status (the\nworst of its checks) and each check's state, as /v1/health/service/NAME.\n\n  health web",
			Args:    []dsl.Arg{{Name: "NAME", Required: true, Help: "the service name"}},
			Flags:   []dsl.Flag{{Name: "passing", Help: "only instances whose every check passes (as ?passing)"}},
		}, Run: m.runHealth},
		{Spec: dsl.Spec{
			Verb:    "service deregister",
			Access:  dsl.AccessWrite,
			Summary: "deregister a service instance and its checks",
			Help:    "service deregister ID removes the instance ID and its checks.\n\n  service deregister web-1",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "the instance id"}},
		}, Run: m.runServiceDeregister},
		{Spec: dsl.Spec{
			Verb:    "service list",
			Access:  dsl.AccessRead,
			Summary: "list the services: instances, passing, tags",
			Help:    "service list answers one row per service name: how many instances, how many pass all\ntheir checks, and their tags.\n\n  service list",
		}, Run: m.runServiceList},
		{Spec: dsl.Spec{
			Verb:    "service register",
			Access:  dsl.AccessWrite,
			Summary: "register a service instance, with an optional check",
			Help: "service register NAME records an instance of NAME (id= defaults to NAME) as Consul's\n" +
				"agent/service/register does, with at most one check: check.http=URL or check.tcp=HOST:PORT\n" +
				"probed every check.interval=, or check.ttl=D updated over HTTP. A re-registration replaces\n" +
				"the instance and keeps its checks' states.\n\n" +
				"  service register web id=web-1 address=127.0.0.1 port=8080 tag=v1 check.http=http://127.0.0.1:8080/health check.interval=5s\n" +
				"  service register db port=5432 check.tcp=127.0.0.1:5432 check.interval=10s",
			Args: []dsl.Arg{{Name: "NAME", Required: true, Help: "the service name"}},
			Options: []dsl.Option{
				{Name: "address", Meta: "ADDR", Help: "the instance's address (default: the node's)"},
				{Name: "check.deregister-after", Kind: dsl.Duration, Help: "deregister the instance after its check was critical this long"},
				{Name: "check.http", Meta: "URL", Help: "an HTTP check: 2xx passes, 429 warns"},
				{Name: "check.interval", Kind: dsl.Duration, Help: "how often an HTTP or TCP check runs"},
				{Name: "check.tcp", Meta: "HOST:PORT", Help: "a TCP check: a connection passes"},
				{Name: "check.timeout", Kind: dsl.Duration, Help: "a probe's timeout (default 10s)"},
				{Name: "check.ttl", Kind: dsl.Duration, Help: "a TTL check, critical unless updated within D"},
				{Name: "id", Meta: "ID", Help: "the instance id (default NAME)"},
				{Name: "meta", Meta: "K:V", Repeatable: true, Help: "a metadata pair"},
				{Name: "port", Kind: dsl.Int, Help: "the instance's port"},
				{Name: "tag", Meta: "TAG", Repeatable: true, Help: "a tag (repeatable)"},
			},
		}, Run: m.runServiceRegister},
		{Spec: dsl.Spec{
			Verb:    "service show",
			Access:  dsl.AccessRead,
			Summary: "the instances of a service with their checks",
			Help:    "service show NAME answers one row per instance: id, address, port, tags, meta, indexes and\nits checks with state and output.\n\n  service show web",
			Args:    []dsl.Arg{{Name: "NAME", Required: true, Help: "the service name"}},
		}, Run: m.runServiceShow},
	}
}

// durOpt reads a duration option as Consul's string form.
func durOpt(st *dsl.Statement, name string) (string, error) {
	w, ok := st.Opt(name)
	if !ok {
		return "", nil
	}
	d, err := time.ParseDuration(w.Text)
	if err != nil {
		n, err2 := strconv.ParseFloat(w.Text, 64)
		if err2 != nil {
			return "", engines.Errorf(wire.InvalidArgument, w, "%s: want a duration such as 10s", name)
		}
		d = time.Duration(n * float64(time.Second))
	}
	return d.String(), nil
}

func (m *Module) runServiceRegister(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	reg := &api.AgentServiceRegistration{Name: st.Args["NAME"].Text}
	if w, ok := st.Opt("id"); ok {
		reg.ID = w.Text
	}
	if w, ok := st.Opt("address"); ok {
		reg.Address = w.Text
	}
	if w, ok := st.Opt("port"); ok {
		p, err := strconv.Atoi(w.Text)
		if err != nil || p < 0 || p > 65535 {
			return engines.Errorf(wire.InvalidArgument, w, "port: want 0 to 65535")
		}
		reg.Port = p
	}
	for _, w := range st.Options["tag"] {
		reg.Tags = append(reg.Tags, splitTags(w.Text)...)
	}
	for _, w := range st.Options["meta"] {
		k, v, ok := strings.Cut(w.Text, ":")
		if !ok {
			return engines.Errorf(wire.InvalidArgument, w, "meta: want KEY:VALUE")
		}
		if reg.Meta == nil {
			reg.Meta = map[string]string{}
		}
		reg.Meta[k] = v
	}
	var c api.AgentServiceCheck
	var err error
	if w, ok := st.Opt("check.http"); ok {
		c.HTTP = w.Text
	}
	if w, ok := st.Opt("check.tcp"); ok {
		c.TCP = w.Text
	}
	for name, dst := range map[string]*string{"check.interval": &c.Interval, "check.timeout": &c.Timeout, "check.ttl": &c.TTL, "check.deregister-after": &c.DeregisterCriticalServiceAfter} {
		if *dst, err = durOpt(st, name); err != nil {
			return err
		}
	}
	if c.HTTP != "" || c.TCP != "" || c.TTL != "" || c.Interval != "" || c.Timeout != "" {
		reg.Check = &c
	}
	if err := m.registerService(ctx, r.Actor(), reg); err != nil {
		return verbError(err)
	}
	id := reg.ID
	if id == "" {
		id = reg.Name
	}
	return r.Row(map[string]any{"id": id, "name": reg.Name})
}

// verbError gives a Consul error its wire code.
func verbError(err error) error {
	switch err.(type) {
	case *badRequest:
		return wire.Errorf(wire.InvalidArgument, "%s", err.Error())
	case *notFound:
		return wire.Errorf(wire.NotFound, "%s", err.Error())
	}
	return err
}

func (m *Module) runServiceDeregister(ctx context.Context, r engines.Request) error {
	id := r.Statement().Args["ID"].Text
	if err := m.deregisterService(ctx, r.Actor(), id, ""); err != nil {
		return verbError(err)
	}
	return r.Row(map[string]any{"id": id, "deregistered": true})
}

// serviceSummary is a row of service list.
type serviceSummary struct {
	Name      string   `json:"name"`
	Instances int      `json:"instances"`
	Passing   int      `json:"passing"`
	Tags      []string `json:"tags"`
}

func (m *Module) runServiceList(ctx context.Context, r engines.Request) error {
	var rows []serviceSummary
	m.mir.read(func() {
		by := map[string]*serviceSummary{}
		for _, s := range m.mir.services {
			row := by[s.Name]
			if row == nil {
				row = &serviceSummary{Name: s.Name, Tags: []string{}}
				by[s.Name] = row
			}
			row.Instances++
			if aggregate(m.mir.checksOf(s.ID)) == statePassing {
				row.Passing++
			}
			for _, t := range s.Tags {
				if !hasTags(row.Tags, []string{t}) {
					row.Tags = append(row.Tags, t)
				}
			}
		}
		for _, name := range sortedKeys(by) {
			sort.Strings(by[name].Tags)
			rows = append(rows, *by[name])
		}
	})
	for _, row := range rows {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// checkRow is a check as the verbs show it.
type checkRow struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Service string `json:"service,omitempty"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Output  string `json:"output,omitempty"`
	Index   int64  `json:"modify_index"`
}

func (m *Module) checkRow(c *check) checkRow {
	return checkRow{ID: c.ID, Name: c.Name, Service: c.ServiceID, Type: c.Type, Status: c.Status, Output: m.checks.output(c), Index: c.ModifyIndex}
}

// instanceRow is a service instance as service show and health answer it.
type instanceRow struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Address     string            `json:"address"`
	Port        int               `json:"port"`
	Tags        []string          `json:"tags,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Status      string            `json:"status"`
	Checks      []checkRow        `json:"checks"`
	CreateIndex int64             `json:"create_index"`
	ModifyIndex int64             `json:"modify_index"`
}

func (m *Module) instances(name string, passingOnly bool) []instanceRow {
	var rows []instanceRow
	m.mir.read(func() {
		for _, s := range m.mir.servicesNamed(name) {
			cs := m.mir.checksOf(s.ID)
			st := aggregate(cs)
			if passingOnly && st != statePassing {
				continue
			}
			addr := s.Address
			if addr == "" {
				addr = m.nodeAddress()
			}
			row := instanceRow{ID: s.ID, Name: s.Name, Address: addr, Port: s.Port, Tags: s.Tags, Meta: s.Meta, Status: st,
				Checks: []checkRow{}, CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex}
			for _, c := range cs {
				row.Checks = append(row.Checks, m.checkRow(c))
			}
			rows = append(rows, row)
		}
	})
	return rows
}

func (m *Module) runServiceShow(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["NAME"]
	rows := m.instances(w.Text, false)
	if len(rows) == 0 {
		return engines.Errorf(wire.NotFound, w, "no service named %q is registered (service list shows those that are)", w.Text)
	}
	for _, row := range rows {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

func (m *Module) runHealth(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	for _, row := range m.instances(st.Args["NAME"].Text, st.Flags["passing"]) {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

func (m *Module) runCheckList(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	state := ""
	if w, ok := st.Opt("state"); ok {
		switch w.Text {
		case statePassing, stateWarning, stateCritical:
			state = w.Text
		default:
			return engines.Errorf(wire.InvalidArgument, w, "state: want passing, warning or critical, not %q", w.Text)
		}
	}
	var rows []checkRow
	m.mir.read(func() {
		for _, c := range m.sortedChecks() {
			if state == "" || c.Status == state {
				rows = append(rows, m.checkRow(c))
			}
		}
	})
	for _, row := range rows {
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// describe is a service's registration in one line, for audit who.
func describe(data map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id=%v", data["id"])
	if a, ok := data["address"]; ok {
		fmt.Fprintf(&b, " address=%v", a)
	}
	if p, ok := data["port"]; ok {
		fmt.Fprintf(&b, " port=%v", p)
	}
	if t, ok := data["tags"].([]any); ok && len(t) > 0 {
		fmt.Fprintf(&b, " tags=%v", t)
	}
	if c, ok := data["checks"].([]any); ok && len(c) > 0 {
		fmt.Fprintf(&b, " checks=%v", c)
	}
	return b.String()
}
