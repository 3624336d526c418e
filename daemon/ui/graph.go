package ui

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

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

// Layout sizes, in SVG user units (pixels at 100%).
const (
	nodeHeight  = 28
	nodePadX    = 12
	charWidth   = 6.6 // an 11px sans-serif character, on average
	layerGap    = 56
	rowGap      = 14
	graphMargin = 8
)

// placed is a node's box in the layout.
type placed struct {
	x, y, w float64
}

// layout places g's nodes in layers from left to right, a layered
// (Sugiyama-style) drawing as Graphviz's dot with rankdir=LR: each edge
// from → to goes at least one layer to the right (the longest path from
// the nodes nothing points to), and each layer is ordered by the mean
// position of its nodes' neighbours in the layer before, a few sweeps, to
// keep edges from crossing. A cycle (the infra engine refuses them) is
// broken where it is met.
func layout(g Graph) (map[string]placed, float64, float64) {
	idx := map[string]int{}
	for i, n := range g.Nodes {
		idx[n] = i
	}
	succ := make([][]int, len(g.Nodes))
	pred := make([][]int, len(g.Nodes))
	for _, e := range g.Edges {
		a, b := idx[e[0]], idx[e[1]]
		if a != b {
			succ[a] = append(succ[a], b)
			pred[b] = append(pred[b], a)
		}
	}
	layer := make([]int, len(g.Nodes))
	state := make([]int, len(g.Nodes)) // 0 new, 1 on the path, 2 done
	var visit func(int) int
	visit = func(n int) int { // the longest path to n from a node nothing points to
		if state[n] == 2 {
			return layer[n]
		}
		state[n] = 1
		l := 0
		for _, p := range pred[n] {
			if state[p] == 1 {
				continue // a cycle: this edge is dropped from the layering
			}
			l = max(l, visit(p)+1)
		}
		state[n], layer[n] = 2, l
		return l
	}
	nLayers := 0
	for n := range g.Nodes {
		nLayers = max(nLayers, visit(n)+1)
	}
	layers := make([][]int, nLayers)
	for n := range g.Nodes {
		layers[layer[n]] = append(layers[layer[n]], n)
	}
	pos := make([]float64, len(g.Nodes))
	for _, l := range layers {
		for i, n := range l {
			pos[n] = float64(i)
		}
	}
	for sweep := 0; sweep < 4; sweep++ {
		for li := 1; li < len(layers); li++ {
			l := layers[li]
			bary := map[int]float64{}
			for _, n := range l {
				sum, k := 0.0, 0
				for _, p := range pred[n] {
					if layer[p] == li-1 {
						sum, k = sum+pos[p], k+1
					}
				}
				bary[n] = pos[n]
				if k > 0 {
					bary[n] = sum / float64(k)
				}
			}
			sort.SliceStable(l, func(i, j int) bool { return bary[l[i]] < bary[l[j]] })
			for i, n := range l {
				pos[n] = float64(i)
			}
		}
	}
	out := map[string]placed{}
	x, height := float64(graphMargin), 0.0
	for _, l := range layers {
		w := 0.0
		for _, n := range l {
			w = max(w, float64(len(g.Nodes[n]))*charWidth+2*nodePadX)
		}
		for i, n := range l {
			y := float64(graphMargin) + float64(i)*(nodeHeight+rowGap)
			out[g.Nodes[n]] = placed{x: x, y: y, w: w}
			height = max(height, y+nodeHeight+graphMargin)
		}
		x += w + layerGap
	}
	return out, x - layerGap + graphMargin, height
}

// RenderSVG draws g laid out (layout), each node a rounded box filled by
// its state (states; pending when absent) in a group with the id
// res-ADDR and the classes node and state-STATE, linked to its history
// (hrefPrefix + its subject, URL-escaped), and each edge an arrow.
func RenderSVG(g Graph, states map[string]string, subjectOf func(addr string) string, hrefPrefix string) []byte {
	at, w, h := layout(g)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="11">`+"\n", w, h, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#888888"/></marker></defs>` + "\n")
	for _, e := range g.Edges {
		a, b2 := at[e[0]], at[e[1]]
		if e[0] == e[1] {
			continue
		}
		x1, y1 := a.x+a.w, a.y+nodeHeight/2
		x2, y2 := b2.x, b2.y+nodeHeight/2
		if x2 <= x1 { // an edge of a broken cycle goes back: draw it under the boxes
			x1, x2 = a.x, b2.x+b2.w
		}
		mid := (x1 + x2) / 2
		fmt.Fprintf(&b, `<path class="edge" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#888888" stroke-width="1.2" marker-end="url(#arrow)"/>`+"\n",
			x1, y1, mid, y1, mid, y2, x2, y2)
	}
	for _, n := range g.Nodes {
		st := states[n]
		if st == "" {
			st = StatePending
		}
		style, p := stateStyle[st], at[n]
		fmt.Fprintf(&b, `<g id="%s" class="node state-%s"><title>%s</title><a href="%s">`,
			xmlEscape("res-"+n), st, xmlEscape(n+": "+strings.ReplaceAll(st, "_", " ")), xmlEscape(hrefPrefix+url.QueryEscape(subjectOf(n))))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" rx="6" fill="%s" stroke="%s" stroke-width="1.5"/>`, p.x, p.y, p.w, nodeHeight, style[0], style[1])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="central" fill="#111111">%s</text></a></g>`+"\n", p.x+p.w/2, p.y+nodeHeight/2, xmlEscape(n))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
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
	svg := RenderSVG(g, states, func(addr string) string { return ws + "/" + addr }, "#/history?subject=")
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
