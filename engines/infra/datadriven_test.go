package infra

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/engines/infra/config"
	"github.com/cairnhq/cairn/engines/infra/provider"
)

// TestPlanDataDriven runs testdata/plan/*: the pure planner on a
// configuration, variables, state and reality given in the test, with no
// file read and no provider called. The input of a command is a set of
// sections, each introduced by a line "-- NAME --":
//
//   - NAME.hcl: a configuration file (of the directory /cfg);
//   - vars: lines NAME=VALUE, as var.NAME=VALUE on a statement;
//   - state: one object a line, "ADDR id=ID ATTR=VALUE…" with the
//     optional config=A,B (the attributes the configuration set; by
//     default every attribute given but the computed ones),
//     sensitive=A,B (given in clear here, held as digests in state) and
//     deps=ADDR,ADDR;
//   - reality: lines "ADDR gone", or "ADDR ATTR=VALUE…" for attributes
//     that differ from state (VALUE null: not set); an object no line
//     names is as state holds it;
//   - data: lines "ADDR ATTR=VALUE…", what a data source instance's read
//     answers.
//
// A VALUE is JSON (a "quoted string", a number, a list) or else a bare
// string. Commands:
//
//   - plan [destroy] [target=(A,B)] [replace=(A,B)] [json]: prints the
//     data source reads the planner asked for (and their arguments), then
//     the plan as infra plan shows it, then with json the plan row;
//     an error as "error (CODE): MESSAGE";
//   - validate: builds the graph, as infra validate does.
//
// Regenerate the expectations with -rewrite.
func TestPlanDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/plan", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			in := parseSections(t, td.Input)
			cfg, diags := config.Parse("/cfg", in.files)
			switch td.Cmd {
			case "validate":
				if !diags.HasErrors() {
					_, diags = buildGraph(cfg)
				}
				if diags.HasErrors() {
					return errorText(diagErr(diags))
				}
				return fmt.Sprintf("ok: %d resources, %d variables, %d outputs\n", len(cfg.Resources), len(cfg.Variables), len(cfg.Outputs))
			case "plan":
				if diags.HasErrors() {
					return errorText(diagErr(diags))
				}
				return runPlanCase(t, td, cfg, in)
			}
			t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			return ""
		})
	})
}

// planCase is the input of one command.
type planCase struct {
	files   map[string]string
	vars    map[string]string
	state   map[string]*ResourceState
	clear   map[string]provider.Values // state's attributes in clear, sensitive ones too
	reality []string
	data    map[string]provider.Values
}

func runPlanCase(t *testing.T, td *datadriven.TestData, cfg *config.Config, in *planCase) string {
	vars, diags := cfg.VariableValues(config.Inputs{Values: in.vars})
	if diags.HasErrors() {
		return errorText(diagErr(diags))
	}
	opts := planOptions{Workspace: "ws", Dir: "/cfg", StateSeq: 7}
	asJSON := false
	for _, a := range td.CmdArgs {
		switch a.Key {
		case "destroy":
			opts.Destroy = true
		case "target":
			opts.Targets = a.Vals
		case "replace":
			opts.Replace = a.Vals
		case "json":
			asJSON = true
		default:
			t.Fatalf("%s: unknown argument %s", td.Pos, a.Key)
		}
	}
	real := Reality{Objects: map[string]provider.Values{}, Data: map[string]provider.Values{}}
	for addr, v := range in.clear {
		real.Objects[addr] = v.Clone()
	}
	for _, line := range in.reality {
		addr, rest, _ := strings.Cut(line, " ")
		if strings.TrimSpace(rest) == "gone" {
			delete(real.Objects, addr)
			continue
		}
		rs := in.state[addr]
		if rs == nil {
			t.Fatalf("%s: reality of %s, which state does not hold", td.Pos, addr)
		}
		for k, v := range parseAttrs(t, rest) {
			if v == nil {
				delete(real.Objects[addr], k)
			} else {
				real.Objects[addr][k] = normalizeAttr(rs.Type, k, v)
			}
		}
	}
	var b strings.Builder
	for {
		before := inputsText(t, in.state, real)
		p, err := plan(cfg, vars, in.state, real, opts)
		if after := inputsText(t, in.state, real); after != before {
			t.Fatalf("%s: the planner changed its arguments:\n%s\nthen\n%s", td.Pos, before, after)
		}
		if err != nil {
			return b.String() + errorText(err)
		}
		if len(p.reads) == 0 {
			b.WriteString(strings.Join(render(p), "\n") + "\n")
			if asJSON {
				j, err := json.MarshalIndent(planJSON(p), "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				b.Write(append(j, '\n'))
			}
			return b.String()
		}
		for _, rd := range p.reads {
			args, _ := json.Marshal(rd.args)
			fmt.Fprintf(&b, "read %s %s\n", rd.addr, args)
			got, ok := in.data[rd.addr]
			if !ok {
				return b.String() + fmt.Sprintf("(the test gives no data for %s)\n", rd.addr)
			}
			real.Data[rd.addr] = got
		}
	}
}

// inputsText is state and reality as JSON, to tell whether the planner
// changed them.
func inputsText(t *testing.T, state map[string]*ResourceState, real Reality) string {
	b, err := json.Marshal([]any{state, real})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// errorText is an error as the tests print it: its wire code and message.
func errorText(err error) string {
	return fmt.Sprintf("error (%s): %s\n", engines.ErrorCode(err), err.Error())
}

// parseSections splits input at lines "-- NAME --" and reads each section.
func parseSections(t *testing.T, input string) *planCase {
	in := &planCase{files: map[string]string{}, vars: map[string]string{}, state: map[string]*ResourceState{},
		clear: map[string]provider.Values{}, data: map[string]provider.Values{}}
	name := ""
	for line := range strings.Lines(input) {
		if h := strings.TrimSpace(line); strings.HasPrefix(h, "-- ") && strings.HasSuffix(h, " --") && len(h) > 6 {
			name = strings.TrimSpace(h[3 : len(h)-3])
			if strings.HasSuffix(name, ".hcl") {
				in.files[filepath.Join("/cfg", name)] = ""
			}
			continue
		}
		text := strings.TrimSpace(line)
		switch {
		case name == "":
			if text != "" {
				t.Fatalf("input starts before the first -- NAME -- line: %q", line)
			}
		case strings.HasSuffix(name, ".hcl"):
			in.files[filepath.Join("/cfg", name)] += line
		case text == "":
		case name == "vars":
			k, v, _ := strings.Cut(text, "=")
			in.vars[k] = v
		case name == "state":
			addr, rest, _ := strings.Cut(text, " ")
			rs, clear := stateLine(t, addr, rest)
			in.state[addr], in.clear[addr] = rs, clear
		case name == "reality":
			in.reality = append(in.reality, text)
		case name == "data":
			addr, rest, _ := strings.Cut(text, " ")
			in.data[addr] = parseAttrs(t, rest)
		default:
			t.Fatalf("unknown section %q", name)
		}
	}
	return in
}

// stateLine reads one object of state: the record state holds, and its
// attributes in clear (as reality has them unless told otherwise).
func stateLine(t *testing.T, addr, rest string) (*ResourceState, provider.Values) {
	typ := strings.TrimPrefix(staticAddr(addr), "data.")
	typ = typ[:strings.IndexByte(typ, '.')]
	rt := resourceType(typ)
	if rt == nil {
		t.Fatalf("state: %s: no resource type %q", addr, typ)
	}
	sch := rt.Schema()
	rs := &ResourceState{Addr: addr, Type: typ, Attrs: map[string]any{}}
	clear := provider.Values{}
	given := map[string]bool{}
	list := func(v any) []string {
		s, _ := v.(string)
		return strings.Split(s, ",")
	}
	for k, v := range parseAttrs(t, rest) {
		switch k {
		case "id":
			rs.ID, _ = v.(string)
		case "config":
			rs.Config = list(v)
		case "sensitive":
			rs.Sensitive = list(v)
		case "deps":
			rs.Deps = list(v)
		default:
			if sch.Attributes[k] == nil {
				t.Fatalf("state: %s: %s has no attribute %q", addr, typ, k)
			}
			clear[k] = normalizeAttr(typ, k, v)
			given[k] = true
		}
	}
	for k, v := range clear {
		if rs.sensitive(k) {
			rs.Attrs[k] = digest(v)
		} else {
			rs.Attrs[k] = v
		}
	}
	if rs.Config == nil {
		for _, k := range slices.Sorted(maps.Keys(given)) {
			if !sch.Attributes[k].Computed {
				rs.Config = append(rs.Config, k)
			}
		}
	}
	slices.Sort(rs.Sensitive)
	return rs, clear
}

var attrRE = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)`)

// parseAttrs reads NAME=VALUE words: VALUE in JSON, else a bare string;
// null is nil.
func parseAttrs(t *testing.T, s string) provider.Values {
	out := provider.Values{}
	for _, m := range attrRE.FindAllStringSubmatch(s, -1) {
		var v any
		if err := json.Unmarshal([]byte(m[2]), &v); err != nil {
			v = m[2]
		}
		if l, ok := v.([]any); ok {
			var ss []string
			for _, x := range l {
				ss = append(ss, fmt.Sprint(x))
			}
			v = ss
		}
		out[m[1]] = v
	}
	if rest := strings.TrimSpace(attrRE.ReplaceAllString(s, "")); rest != "" {
		t.Fatalf("cannot read %q in %q", rest, s)
	}
	return out
}

// normalizeAttr gives a value the Go type of its attribute (JSON numbers
// are float64).
func normalizeAttr(typ, attr string, v any) any {
	if rt := resourceType(typ); rt != nil {
		if a := rt.Schema().Attributes[attr]; a != nil {
			if f, ok := v.(float64); ok {
				v = json.Number(fmt.Sprint(f))
			}
			return normalize(v, a.Type)
		}
	}
	return v
}
