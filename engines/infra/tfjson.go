package infra

import (
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// The plan row carries, besides cairn's own fields, the resource_changes
// of Terraform's JSON plan format (terraform show -json, format_version
// 1.x, developer.hashicorp.com/terraform/internals/json-format), so tools
// written for Terraform's plans read cairn's. One difference, on purpose:
// a sensitive value is null in before and after (its *_sensitive entry is
// true); Terraform writes it in clear.

// tfFormatVersion is the JSON plan format version the rows follow.
const tfFormatVersion = "1.2"

// tfResourceChange is one element of resource_changes.
type tfResourceChange struct {
	Address         string   `json:"address"`
	PreviousAddress string   `json:"previous_address,omitempty"`
	ModuleAddress   string   `json:"module_address,omitempty"`
	Mode            string   `json:"mode"`
	Type            string   `json:"type"`
	Name            string   `json:"name"`
	Index           any      `json:"index,omitempty"`
	ProviderName    string   `json:"provider_name"`
	Change          tfChange `json:"change"`
	ActionReason    string   `json:"action_reason,omitempty"`
}

// tfChange is a change object of the format.
type tfChange struct {
	Actions         []string       `json:"actions"`
	Before          any            `json:"before"`
	After           any            `json:"after"`
	AfterUnknown    any            `json:"after_unknown"`
	BeforeSensitive any            `json:"before_sensitive"`
	AfterSensitive  any            `json:"after_sensitive"`
	Importing       map[string]any `json:"importing,omitempty"`
}

// tfActions are the format's action lists.
func tfActions(a Action) []string {
	switch a {
	case Create:
		return []string{"create"}
	case Update:
		return []string{"update"}
	case Delete:
		return []string{"delete"}
	case Replace:
		return []string{"delete", "create"}
	case ReplaceCBD:
		return []string{"create", "delete"}
	case Read:
		return []string{"read"}
	}
	return []string{"no-op"}
}

// providerName is the provider's address as Terraform writes it:
// registry.terraform.io/hashicorp/random, terraform.io/builtin/terraform;
// cairn's own providers are cairn/NAME.
func providerName(typ string) string {
	p := providerOf(typ)
	if p == nil {
		return ""
	}
	if s, ok := p.(provider.Sourced); ok {
		src := s.Source()
		if strings.Count(src, "/") == 1 {
			return "registry.terraform.io/" + src
		}
		return src
	}
	return "cairn/" + p.Name()
}

// instanceIndex is an address's instance key as the format has it: a
// number (count), a string (for_each), or nil.
func instanceIndex(addr string) any {
	parts := addrParts(addr)
	last := parts[len(parts)-1]
	i := strings.IndexByte(last, '[')
	if i < 0 {
		return nil
	}
	k := last[i+1 : len(last)-1]
	if s, err := strconv.Unquote(k); err == nil {
		return s
	}
	if n, err := strconv.Atoi(k); err == nil {
		return n
	}
	return nil
}

// resourceChanges renders a plan's changes as the format's
// resource_changes: every instance, no-op ones too, as Terraform lists
// them.
func resourceChanges(p *Plan) []tfResourceChange {
	prev := map[string]string{}
	for _, mv := range p.Moves {
		prev[mv.To] = mv.From
	}
	out := []tfResourceChange{}
	for _, c := range p.Changes {
		if c.forget {
			continue // leaves state: Terraform lists it under resource_drift or a forget action
		}
		rc := tfResourceChange{
			Address: c.Addr, PreviousAddress: prev[c.Addr], ModuleAddress: c.Module, Mode: c.Mode, Type: c.Type, Name: c.Name,
			Index: instanceIndex(c.Addr), ProviderName: providerName(c.Type),
		}
		ch := tfChange{Actions: tfActions(c.Action)}
		before, after := map[string]any{}, map[string]any{}
		unknown, beforeSens, afterSens := map[string]any{}, map[string]any{}, map[string]any{}
		for _, ac := range c.Attrs {
			if ac.Sensitive {
				beforeSens[ac.Name], afterSens[ac.Name] = true, true
			}
			if ac.Before != nil {
				before[ac.Name] = tfValue(ac.Before, ac.Sensitive)
			} else {
				before[ac.Name] = nil
			}
			switch {
			case ac.Unknown:
				unknown[ac.Name] = true
			case ac.After != nil:
				after[ac.Name] = tfValue(ac.After, ac.Sensitive)
			default:
				after[ac.Name] = nil
			}
		}
		if c.ID != "" {
			before["id"] = c.ID
		}
		switch {
		case c.Action == Create || c.Action == Replace || c.Action == ReplaceCBD || c.Action == Read:
			if c.newID != "" && c.Action != Read {
				after["id"] = c.newID
			} else {
				unknown["id"] = true
			}
		case c.ID != "":
			after["id"] = c.ID
		}
		ch.Before, ch.After, ch.AfterUnknown = before, after, unknown
		ch.BeforeSensitive, ch.AfterSensitive = beforeSens, afterSens
		switch c.Action {
		case Create, Read:
			if c.prior == nil {
				ch.Before, ch.BeforeSensitive = nil, false
			}
		case Delete:
			ch.After, ch.AfterUnknown, ch.AfterSensitive = nil, false, false
		}
		if c.Importing {
			ch.Importing = map[string]any{"id": c.ID}
		}
		switch {
		case c.Action == Replace || c.Action == ReplaceCBD:
			rc.ActionReason = "replace_because_cannot_update"
			switch {
			case strings.Contains(c.Reason, "replace="):
				rc.ActionReason = "replace_by_request"
			case strings.HasPrefix(c.Reason, "replace_triggered_by"):
				rc.ActionReason = "replace_by_triggers"
			}
		case c.Action == Delete && c.Reason == "not in the configuration":
			rc.ActionReason = "delete_because_no_resource_config"
		}
		rc.Change = ch
		out = append(out, rc)
	}
	return out
}

// tfValue is a value as the format writes it (null when sensitive: see
// above).
func tfValue(x any, sensitive bool) any {
	if sensitive {
		return nil
	}
	return normalizeJSON(x)
}

// outputChanges renders the root outputs as the format's output_changes.
func outputChanges(p *Plan) map[string]tfChange {
	out := map[string]tfChange{}
	unknown := map[string]bool{}
	for _, n := range p.Unknown {
		unknown[n] = true
	}
	names := map[string]bool{}
	for n := range p.Outputs {
		names[n] = true
	}
	for n := range unknown {
		names[n] = true
	}
	for n := range names {
		prior, had := p.prior[n]
		sens := p.sensOut[n]
		ch := tfChange{BeforeSensitive: sens && had, AfterSensitive: sens, AfterUnknown: unknown[n]}
		if had && !sens {
			ch.Before = normalizeJSON(prior)
		}
		if !unknown[n] && !sens {
			ch.After = normalizeJSON(p.Outputs[n])
		}
		switch {
		case p.Destroy:
			ch.Actions, ch.After, ch.AfterUnknown, ch.AfterSensitive = []string{"delete"}, nil, false, false
		case !had:
			ch.Actions = []string{"create"}
		case unknown[n] || !sens && !equal(prior, p.Outputs[n]):
			ch.Actions = []string{"update"}
		default:
			ch.Actions = []string{"no-op"}
		}
		out[n] = ch
	}
	for n, prior := range p.prior {
		if !names[n] {
			out[n] = tfChange{Actions: []string{"delete"}, Before: normalizeJSON(prior), After: nil, AfterUnknown: false, BeforeSensitive: false, AfterSensitive: false}
		}
	}
	return out
}
