package infra

import (
	"fmt"
	"sort"
	"strings"
)

// symbols are Terraform's action symbols.
var symbols = map[Action]string{
	Create: "+", Update: "~", Delete: "-", Replace: "-/+", ReplaceCBD: "+/-", Read: "<=",
}

var headlines = map[Action]string{
	Create:     "will be created",
	Update:     "will be updated in-place",
	Delete:     "will be destroyed",
	Replace:    "must be replaced",
	ReplaceCBD: "must be replaced",
	Read:       "will be read during apply",
}

// render writes a plan as Terraform prints one.
func render(p *Plan) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if len(p.Outside) > 0 {
		add("Note: Objects have changed outside of cairn")
		add("")
		add("cairn detected the following changes made outside of cairn since the last apply:")
		last := ""
		for _, o := range p.Outside {
			if o.Addr != last {
				add("")
				if o.Attribute == "" {
					add("  # %s has been deleted", o.Addr)
					last = o.Addr
					continue
				}
				add("  # %s has changed", o.Addr)
				last = o.Addr
			}
			if o.Attribute != "" {
				add("    ~ %s = %s -> %s", o.Attribute, display(o.Before), display(o.After))
			}
		}
		add("")
	}
	var acts []*Change
	for _, c := range p.Changes {
		if c.Action != NoOp || c.Importing {
			acts = append(acts, c)
		}
	}
	forgets := p.forgets()
	if len(acts) == 0 && len(p.Moves) == 0 && len(forgets) == 0 {
		add("No changes. Your infrastructure matches the configuration.")
		if p.Destroy {
			out[len(out)-1] = "No changes. No objects need to be destroyed."
		}
		return append(out, renderOutputs(p)...)
	}
	add("cairn will perform the following actions:")
	for _, mv := range p.Moves {
		add("")
		add("  # %s has moved to %s", mv.From, mv.To)
	}
	for _, c := range forgets {
		add("")
		if c.forgetWhy != "" {
			add("  # %s will no longer be managed by cairn (it is not destroyed)", c.Addr)
			continue
		}
		add("  # %s is gone already and leaves the state", c.Addr)
	}
	for _, c := range acts {
		add("")
		if c.Importing {
			if c.Action == NoOp {
				add("  # %s will be imported [id=%s]", c.Addr, c.ID)
				continue
			}
			add("  # %s will be imported [id=%s], then:", c.Addr, c.ID)
		}
		head := headlines[c.Action]
		if c.Reason != "" && c.Action != Replace && c.Action != ReplaceCBD {
			head += " (because " + c.Reason + ")"
		}
		add("  # %s %s", c.Addr, head)
		if (c.Action == Replace || c.Action == ReplaceCBD) && c.Reason != "" {
			add("  # (because %s)", c.Reason)
		}
		sym := symbols[c.Action]
		block := "resource"
		if c.Mode == "data" {
			block = "data"
		}
		add("%s %s %q %q {", pad(sym), block, c.Type, c.Name)
		width := 0
		for _, ac := range c.Attrs {
			width = max(width, len(ac.Name))
		}
		if c.Action != Delete {
			width = max(width, 2)
		}
		if c.Action == Create || c.Action == Replace || c.Action == ReplaceCBD {
			v := "(known after apply)"
			if c.Action == Create && c.ID != "" {
				v = fmt.Sprintf("%q", c.ID)
			}
			if c.Action != Create {
				add("      ~ %-*s = %q -> (known after apply)", width, "id", c.ID)
			} else {
				add("      + %-*s = %s", width, "id", v)
			}
		} else if c.Action == Update {
			add("        %-*s = %q", width, "id", c.ID)
		}
		for _, ac := range c.Attrs {
			add("%s", attrLine(c.Action, ac, width))
		}
		add("    }")
	}
	add("")
	if p.Summary.Import > 0 {
		add("Plan: %d to import, %d to add, %d to change, %d to destroy.", p.Summary.Import, p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
	} else {
		add("Plan: %d to add, %d to change, %d to destroy.", p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
	}
	out = append(out, renderOutputs(p)...)
	for _, w := range p.Warnings {
		add("")
		add("Warning: %s", w)
	}
	return out
}

func pad(sym string) string {
	switch len(sym) {
	case 1:
		return "  " + sym
	case 2:
		return " " + sym
	}
	return sym
}

func value(ac AttrChange, after bool) string {
	if ac.Sensitive {
		return "(sensitive value)"
	}
	if after {
		if ac.Unknown {
			return "(known after apply)"
		}
		return display(ac.After)
	}
	return display(ac.Before)
}

func attrLine(act Action, ac AttrChange, width int) string {
	name := fmt.Sprintf("%-*s", width, ac.Name)
	switch act {
	case Create, Read:
		return fmt.Sprintf("      + %s = %s", name, value(ac, true))
	case Delete:
		return fmt.Sprintf("      - %s = %s -> null", name, value(ac, false))
	}
	if !ac.Changed {
		return fmt.Sprintf("        %s = %s", name, value(ac, false))
	}
	suffix := ""
	if ac.ForceNew {
		suffix = " # forces replacement"
	}
	switch {
	case ac.Before == nil:
		return fmt.Sprintf("      + %s = %s%s", name, value(ac, true), suffix)
	case ac.After == nil && !ac.Unknown:
		return fmt.Sprintf("      - %s = %s -> null%s", name, value(ac, false), suffix)
	}
	return fmt.Sprintf("      ~ %s = %s -> %s%s", name, value(ac, false), value(ac, true), suffix)
}

func renderOutputs(p *Plan) []string {
	if len(p.Outputs) == 0 && len(p.Unknown) == 0 {
		return nil
	}
	var out []string
	out = append(out, "", "Outputs:")
	names := make([]string, 0, len(p.Outputs)+len(p.Unknown))
	for n := range p.Outputs {
		names = append(names, n)
	}
	names = append(names, p.Unknown...)
	sort.Strings(names)
	for _, n := range names {
		v, ok := p.Outputs[n]
		s := "(known after apply)"
		if ok {
			s = outputText(v)
		}
		out = append(out, fmt.Sprintf("  %s = %s", n, s))
	}
	return out
}

func outputText(v any) string {
	if s, ok := v.(string); ok && s == "(sensitive value)" {
		return s
	}
	return strings.TrimSpace(display(v))
}

// planRow is the machine-readable answer of infra plan (-o json): the
// plan's output shape, rendered from the typed plan at the edge.
type planRow struct {
	ID        int64          `json:"id"`
	Workspace string         `json:"workspace"`
	Add       int            `json:"add"`
	Change    int            `json:"change"`
	Destroy   int            `json:"destroy"`
	Dir       string         `json:"dir"`
	Changes   []changeRow    `json:"changes"`
	Outside   []outsideRow   `json:"changed_outside,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Unknown   []string       `json:"outputs_unknown,omitempty"`
	Warnings  []string       `json:"warnings,omitempty"`
	// Terraform's JSON plan format (tfjson.go).
	FormatVersion   string              `json:"format_version"`
	ResourceChanges []tfResourceChange  `json:"resource_changes"`
	OutputChanges   map[string]tfChange `json:"output_changes"`
}

// changeRow is one change of a plan row.
type changeRow struct {
	Addr   string    `json:"addr"`
	Type   string    `json:"type"`
	Name   string    `json:"name"`
	Mode   string    `json:"mode"` // managed or data
	Action Action    `json:"action"`
	Reason string    `json:"reason,omitempty"`
	ID     string    `json:"id,omitempty"` // the object's id in state, for update/delete/replace
	Attrs  []attrRow `json:"attributes,omitempty"`
}

// attrRow is one attribute's change in a change row.
type attrRow struct {
	Name      string `json:"name"`
	Before    any    `json:"before"`
	After     any    `json:"after"`
	Unknown   bool   `json:"unknown,omitempty"` // after is known only after apply
	ForceNew  bool   `json:"forces_replacement,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Changed   bool   `json:"changed"`
}

// outsideRow is one change made outside cairn, in a plan row.
type outsideRow struct {
	Addr      string `json:"addr"`
	Attribute string `json:"attribute,omitempty"` // empty: the object is gone
	Before    any    `json:"before"`
	After     any    `json:"after"`
}

// planJSON renders a plan as infra plan answers it.
func planJSON(p *Plan) planRow {
	row := planRow{ID: p.ID, Workspace: p.Workspace, Add: p.Summary.Add, Change: p.Summary.Change, Destroy: p.Summary.Destroy,
		Dir: p.Dir, Changes: []changeRow{}, Outputs: p.Outputs, Unknown: p.Unknown, Warnings: p.Warnings,
		FormatVersion: tfFormatVersion, ResourceChanges: resourceChanges(p), OutputChanges: outputChanges(p)}
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue
		}
		cr := changeRow{Addr: c.Addr, Type: c.Type, Name: c.Name, Mode: c.Mode, Action: c.Action, Reason: c.Reason, ID: c.ID}
		for _, ac := range c.Attrs {
			cr.Attrs = append(cr.Attrs, attrRow(ac))
		}
		row.Changes = append(row.Changes, cr)
	}
	for _, o := range p.Outside {
		row.Outside = append(row.Outside, outsideRow(o))
	}
	return row
}

// eventData adds what infra.plan and infra.intent record of a plan, its
// changes and summary, to data.
func (p *Plan) eventData(data map[string]any) map[string]any {
	var changes []any
	for _, c := range p.Changes {
		if c.Action != NoOp {
			changes = append(changes, map[string]any{"addr": c.Addr, "action": string(c.Action)})
		}
	}
	data["changes"] = changes
	data["summary"] = map[string]any{"add": int64(p.Summary.Add), "change": int64(p.Summary.Change), "destroy": int64(p.Summary.Destroy)}
	return data
}
