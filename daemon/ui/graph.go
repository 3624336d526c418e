package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/goccy/go-graphviz"

	"github.com/cairnhq/cairn/journal"
)

// Node states in the infrastructure graph.
const (
	StateInSync  = "in_sync" // in state, no open drift
	StateDrifted = "drifted" // in state, changed outside cairn
	StateFailed  = "failed"  // not in state after an apply that failed
	StatePending = "pending" // in the configuration, not applied yet
)

// stateStyle is each state's fill and stroke, legible on light and dark
// pages alike (the text is always dark on the fill).
var stateStyle = map[string][2]string{
	StateInSync:  {"#c8e6c9", "#2e7d32"},
	StateDrifted: {"#ffe0b2", "#e65100"},
	StateFailed:  {"#ffcdd2", "#c62828"},
	StatePending: {"#e0e0e0", "#616161"},
}

// Graph is a configuration's resources and what each depends on.
type Graph struct {
	Nodes []string
	Edges [][2]string // from, to: from depends on to
}

// ParseDOT reads the graph `infra graph` answers: one quoted address a
// line for a node, `"a" -> "b"` for an edge.
func ParseDOT(lines []string) (Graph, error) {
	var g Graph
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			g.Nodes = append(g.Nodes, n)
		}
	}
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, `"`) {
			continue
		}
		from, to, edge := strings.Cut(line, " -> ")
		a, err := strconv.Unquote(strings.TrimSpace(from))
		if err != nil {
			return g, fmt.Errorf("graph line %d: %q: %w", i+1, line, err)
		}
		add(a)
		if !edge {
			continue
		}
		b, err := strconv.Unquote(strings.TrimSpace(to))
		if err != nil {
			return g, fmt.Errorf("graph line %d: %q: %w", i+1, line, err)
		}
		add(b)
		g.Edges = append(g.Edges, [2]string{a, b})
	}
	return g, nil
}

// StyledDOT writes g as DOT with each node filled by its state and linked
// to its history (href: hrefPrefix + the node's subject, URL-escaped).
func StyledDOT(g Graph, states map[string]string, subjectOf func(addr string) string, hrefPrefix string) []byte {
	var b bytes.Buffer
	b.WriteString("digraph infra {\n  rankdir=LR;\n  bgcolor=\"transparent\";\n")
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11, penwidth=1.5];\n")
	b.WriteString("  edge [color=\"#888888\", arrowsize=0.7];\n")
	for _, n := range g.Nodes {
		st := states[n]
		if st == "" {
			st = StatePending
		}
		style := stateStyle[st]
		fmt.Fprintf(&b, "  %s [fillcolor=%q, color=%q, fontcolor=\"#111111\", href=%q, tooltip=%q, id=%q, class=%q];\n",
			strconv.Quote(n), style[0], style[1], hrefPrefix+url.QueryEscape(subjectOf(n)),
			n+": "+strings.ReplaceAll(st, "_", " "), "res-"+n, "state-"+st)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -> %s;\n", strconv.Quote(e[0]), strconv.Quote(e[1]))
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// RenderSVG lays a DOT graph out with Graphviz's dot (as WebAssembly, in
// process) and answers it as SVG.
func RenderSVG(ctx context.Context, dot []byte) ([]byte, error) {
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("start graphviz: %w", err)
	}
	defer gv.Close()
	gr, err := graphviz.ParseBytes(dot)
	if err != nil {
		return nil, fmt.Errorf("parse graph: %w", err)
	}
	defer gr.Close()
	var out bytes.Buffer
	if err := gv.Render(ctx, gr, graphviz.SVG, &out); err != nil {
		return nil, fmt.Errorf("lay out graph: %w", err)
	}
	return out.Bytes(), nil
}

// serveInfraGraph answers the infra engine's resource graph as SVG: the
// workspace's last applied configuration (`infra graph`), each resource
// coloured by its state (`infra state list`, `infra drift`, the last
// `infra.apply`), linked to its history on the page.
func (s *Server) serveInfraGraph(w http.ResponseWriter, r *http.Request) {
	ws := r.URL.Query().Get("workspace")
	opt := ""
	if ws != "" {
		opt = " workspace=" + quoteWord(ws)
	}
	ans, err := s.run(r, "infra graph"+opt)
	if err != nil {
		writeRunError(w, err)
		return
	}
	g, err := ParseDOT(ans.Lines)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	states := map[string]string{}
	list, err := s.run(r, "infra state list"+opt)
	if err != nil {
		writeRunError(w, err)
		return
	}
	for _, row := range list.Rows {
		var sr struct{ Addr, Workspace string }
		if json.Unmarshal(row, &sr) == nil {
			states[sr.Addr] = StateInSync
			if ws == "" {
				ws = sr.Workspace
			}
		}
	}
	if drift, err := s.run(r, "infra drift"+opt); err == nil {
		for _, row := range drift.Rows {
			var d struct{ Addr string }
			if json.Unmarshal(row, &d) == nil && states[d.Addr] != "" {
				states[d.Addr] = StateDrifted
			}
		}
	}
	if ws == "" {
		ws = s.lastApplied(journal.Query{Kind: "infra.apply", Reverse: true}).subject
	}
	if last := s.lastApplied(journal.Query{Kind: "infra.apply", Subject: ws, Reverse: true}); last.failed {
		for _, n := range g.Nodes {
			if states[n] == "" {
				states[n] = StateFailed
			}
		}
	}
	dot := StyledDOT(g, states, func(addr string) string { return ws + "/" + addr }, "#/history?subject=")
	svg, err := RenderSVG(r.Context(), dot)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(svg)
}

// applied is what the last infra.apply said.
type applied struct {
	subject string
	failed  bool
}

func (s *Server) lastApplied(q journal.Query) applied {
	it := s.Journal.Stream(journal.Audit).Scan(q)
	defer it.Close()
	if !it.Next() {
		return applied{}
	}
	ev, err := it.Raw().Decode()
	if err != nil {
		return applied{}
	}
	_, failed := ev.Data["error"]
	return applied{subject: ev.Subject, failed: failed}
}

// quoteWord quotes a value for the command language when it needs it.
func quoteWord(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t'\"\\|") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
