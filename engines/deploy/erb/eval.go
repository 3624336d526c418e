package erb

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Context is what a template sees: the job's properties (defaults from
// the job's spec with the manifest's values over them, nested by the
// dots of their names), spec.* and the links it consumes.
type Context struct {
	// Properties are the job's properties, nested ("a.b" is a → b).
	Properties map[string]any
	// Spec is spec.*: address, ip, index, id, name, deployment, az,
	// bootstrap, …
	Spec map[string]any
	// Links are the links the job consumes, by name.
	Links map[string]Link
}

// Link is a consumed link: the instances of the providing group and the
// properties the providing job shares.
type Link struct {
	Address    string
	Instances  []map[string]any // address, index, id, name, az, bootstrap
	Properties map[string]any
}

// object is spec, a link or one of its instances.
type object struct {
	kind   string // spec, link, instance
	fields map[string]any
	link   *Link
}

type evaluator struct {
	name string
	line int // of the node being run, for errors found below it
	ctx  *Context
	vars []map[string]any
}

func (ev *evaluator) errf(line int, format string, args ...any) error {
	return &Error{ev.name, line, fmt.Sprintf(format, args...)}
}

func (ev *evaluator) run(body []node, b *strings.Builder) error {
	for _, n := range body {
		switch n := n.(type) {
		case textNode:
			b.WriteString(n.s)
		case outNode:
			ev.line = n.line
			v, err := ev.eval(n.x)
			if err != nil {
				return err
			}
			b.WriteString(toS(v))
		case assignNode:
			ev.line = n.line
			v, err := ev.eval(n.x)
			if err != nil {
				return err
			}
			ev.set(n.name, v)
		case stmtNode:
			ev.line = n.line
			if _, err := ev.eval(n.x); err != nil {
				return err
			}
		case *ifNode:
			ev.line = n.line
			done := false
			for i, c := range n.conds {
				v, err := ev.eval(c)
				if err != nil {
					return err
				}
				if truthy(v) {
					if err := ev.run(n.bodies[i], b); err != nil {
						return err
					}
					done = true
					break
				}
			}
			if !done {
				if err := ev.run(n.els, b); err != nil {
					return err
				}
			}
		case *eachNode:
			if err := ev.each(n, b); err != nil {
				return err
			}
		case *ifpNode:
			var vals []any
			all := true
			for _, x := range n.names {
				nv, err := ev.eval(x)
				if err != nil {
					return err
				}
				name, ok := nv.(string)
				if !ok {
					return ev.errf(n.line, "if_p and if_link take names, not %s", typeName(nv))
				}
				if n.link {
					l, found := ev.ctx.Links[name]
					if !found {
						all = false
						break
					}
					vals = append(vals, &object{kind: "link", link: &l})
					continue
				}
				v, found := lookup(ev.ctx.Properties, name)
				if !found || v == nil {
					all = false
					break
				}
				vals = append(vals, v)
			}
			if !all {
				if err := ev.run(n.els, b); err != nil {
					return err
				}
				continue
			}
			ev.vars = append(ev.vars, map[string]any{})
			for i, p := range n.params {
				if i < len(vals) {
					ev.set(p, vals[i])
				}
			}
			err := ev.run(n.body, b)
			ev.vars = ev.vars[:len(ev.vars)-1]
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (ev *evaluator) each(n *eachNode, b *strings.Builder) error {
	coll, err := ev.eval(n.coll)
	if err != nil {
		return err
	}
	type pair struct{ a, b any }
	var items []pair
	switch c := coll.(type) {
	case []any:
		for i, v := range c {
			items = append(items, pair{v, int64(i)})
		}
	case map[string]any:
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys) // Ruby keeps insertion order; YAML's is lost, so by key
		for _, k := range keys {
			items = append(items, pair{k, c[k]})
		}
	case nil:
		return ev.errf(n.line, "undefined method '%s' for nil", n.method)
	default:
		return ev.errf(n.line, "%s of a %s is not in cairn's Ruby subset", n.method, typeName(coll))
	}
	_, isHash := coll.(map[string]any)
	for _, it := range items {
		ev.vars = append(ev.vars, map[string]any{})
		switch {
		case isHash && n.method != "each_with_index" && len(n.params) == 1:
			ev.set(n.params[0], []any{it.a, it.b})
		case isHash && n.method != "each_with_index":
			ev.set(n.params[0], it.a)
			ev.set(n.params[1], it.b)
		case n.method == "each_with_index":
			if len(n.params) > 0 {
				if isHash {
					ev.set(n.params[0], []any{it.a, it.b})
				} else {
					ev.set(n.params[0], it.a)
				}
			}
			if len(n.params) > 1 {
				ev.set(n.params[1], it.b)
			}
		default:
			if len(n.params) > 0 {
				ev.set(n.params[0], it.a)
			}
		}
		err := ev.run(n.body, b)
		ev.vars = ev.vars[:len(ev.vars)-1]
		if err != nil {
			return err
		}
	}
	return nil
}

func (ev *evaluator) set(name string, v any) {
	for i := len(ev.vars) - 1; i >= 0; i-- {
		if _, ok := ev.vars[i][name]; ok {
			ev.vars[i][name] = v
			return
		}
	}
	ev.vars[len(ev.vars)-1][name] = v
}

func (ev *evaluator) get(name string) (any, bool) {
	for i := len(ev.vars) - 1; i >= 0; i-- {
		if v, ok := ev.vars[i][name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (ev *evaluator) eval(x expr) (any, error) {
	switch x := x.(type) {
	case litExpr:
		return x.v, nil
	case interpExpr:
		var b strings.Builder
		for _, p := range x.parts {
			v, err := ev.eval(p)
			if err != nil {
				return nil, err
			}
			b.WriteString(toS(v))
		}
		return b.String(), nil
	case arrayExpr:
		out := make([]any, 0, len(x.elems))
		for _, e := range x.elems {
			v, err := ev.eval(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case hashExpr:
		out := map[string]any{}
		for i := range x.keys {
			k, err := ev.eval(x.keys[i])
			if err != nil {
				return nil, err
			}
			v, err := ev.eval(x.vals[i])
			if err != nil {
				return nil, err
			}
			out[toS(k)] = v
		}
		return out, nil
	case identExpr:
		if v, ok := ev.get(x.name); ok {
			return v, nil
		}
		if x.name == "spec" {
			return &object{kind: "spec", fields: ev.ctx.Spec}, nil
		}
		return ev.call(callExpr{name: x.name, line: x.line})
	case callExpr:
		return ev.call(x)
	case indexExpr:
		r, err := ev.eval(x.recv)
		if err != nil {
			return nil, err
		}
		i, err := ev.eval(x.idx)
		if err != nil {
			return nil, err
		}
		return index(r, i, func(f string, a ...any) error { return ev.errf(x.line, f, a...) })
	case unaryExpr:
		v, err := ev.eval(x.x)
		if err != nil {
			return nil, err
		}
		if x.op == "!" {
			return !truthy(v), nil
		}
		if f, ok := num(v); ok {
			if n, isInt := v.(int64); isInt {
				return -n, nil
			}
			return -f, nil
		}
		return nil, ev.errf(ev.line, "unary minus of a %s", typeName(v))
	case condExpr:
		c, err := ev.eval(x.c)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return ev.eval(x.a)
		}
		return ev.eval(x.b)
	case binaryExpr:
		return ev.binary(x)
	}
	if _, ok := x.(symProc); ok {
		return nil, ev.errf(ev.line, "&:name is only a method's last argument")
	}
	return nil, ev.errf(ev.line, "an expression cairn's Ruby subset cannot evaluate")
}

func (ev *evaluator) binary(x binaryExpr) (any, error) {
	l, err := ev.eval(x.l)
	if err != nil {
		return nil, err
	}
	switch x.op {
	case "&&":
		if !truthy(l) {
			return l, nil
		}
		return ev.eval(x.r)
	case "||":
		if truthy(l) {
			return l, nil
		}
		return ev.eval(x.r)
	}
	r, err := ev.eval(x.r)
	if err != nil {
		return nil, err
	}
	switch x.op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	}
	if ls, ok := l.(string); ok {
		rs, ok := r.(string)
		if x.op == "+" {
			if !ok {
				return nil, ev.errf(x.line, "no implicit conversion of %s into String", typeName(r))
			}
			return ls + rs, nil
		}
		if x.op == "*" {
			if n, isInt := r.(int64); isInt && n >= 0 {
				if n > 0 && int64(len(ls)) > (1<<20)/n {
					return nil, ev.errf(x.line, "a string of more than 1 MiB")
				}
				return strings.Repeat(ls, int(n)), nil
			}
		}
		if ok {
			switch x.op {
			case "<":
				return ls < rs, nil
			case ">":
				return ls > rs, nil
			case "<=":
				return ls <= rs, nil
			case ">=":
				return ls >= rs, nil
			}
		}
		return nil, ev.errf(x.line, "%s between a String and a %s", x.op, typeName(r))
	}
	if la, ok := l.([]any); ok && x.op == "+" {
		ra, ok := r.([]any)
		if !ok {
			return nil, ev.errf(x.line, "no implicit conversion of %s into Array", typeName(r))
		}
		return append(append([]any{}, la...), ra...), nil
	}
	lf, lok := num(l)
	rf, rok := num(r)
	if !lok || !rok {
		return nil, ev.errf(x.line, "%s between a %s and a %s", x.op, typeName(l), typeName(r))
	}
	li, lint := l.(int64)
	ri, rint := r.(int64)
	ints := lint && rint
	switch x.op {
	case "<":
		return lf < rf, nil
	case ">":
		return lf > rf, nil
	case "<=":
		return lf <= rf, nil
	case ">=":
		return lf >= rf, nil
	case "+":
		if ints {
			return li + ri, nil
		}
		return lf + rf, nil
	case "-":
		if ints {
			return li - ri, nil
		}
		return lf - rf, nil
	case "*":
		if ints {
			return li * ri, nil
		}
		return lf * rf, nil
	case "/", "%":
		if rf == 0 && ints {
			return nil, ev.errf(x.line, "divided by 0")
		}
		if x.op == "%" {
			if ints {
				return li % ri, nil
			}
			return math.Mod(lf, rf), nil
		}
		if ints {
			return li / ri, nil
		}
		return lf / rf, nil
	}
	return nil, ev.errf(x.line, "operator %s is not in cairn's Ruby subset", x.op)
}

// call evaluates a function (no receiver) or a method call.
func (ev *evaluator) call(c callExpr) (any, error) {
	args := make([]any, 0, len(c.args))
	for _, a := range c.args {
		v, err := ev.eval(a)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	errf := func(f string, a ...any) error { return ev.errf(c.line, f, a...) }
	if c.recv == nil {
		switch c.name {
		case "p":
			return property(ev.ctx.Properties, args, errf)
		case "link":
			if len(args) != 1 {
				return nil, errf("link takes one link name")
			}
			name := toS(args[0])
			l, ok := ev.ctx.Links[name]
			if !ok {
				return nil, errf("Can't find link '%s'", name)
			}
			return &object{kind: "link", link: &l}, nil
		case "if_link":
			return nil, errf("if_link needs a do |…| block")
		case "raise":
			msg := "unhandled exception"
			if len(args) > 0 {
				msg = toS(args[0])
			}
			return nil, errf("raise: %s", msg)
		case "if_p":
			return nil, errf("if_p needs a do |…| block")
		}
		return nil, errf("undefined local variable or method '%s' (not in cairn's Ruby subset)", c.name)
	}
	r, err := ev.eval(c.recv)
	if err != nil {
		return nil, err
	}
	if c.block != nil {
		return ev.withBlock(r, c, args, errf)
	}
	return method(r, c.name, args, errf)
}

// withBlock runs the Enumerable methods that take a block: map,
// collect, select, filter, reject, find, detect, any?, all?, count,
// each (for its value), sort_by, flat_map.
func (ev *evaluator) withBlock(r any, c callExpr, args []any, errf func(string, ...any) error) (any, error) {
	var items []any
	switch v := r.(type) {
	case []any:
		items = v
	case map[string]any:
		for _, k := range names(v) {
			items = append(items, []any{k, v[k]})
		}
	default:
		return nil, errf("%s with a block on %s is not in cairn's Ruby subset", c.name, typeName(r))
	}
	call := func(it any) (any, error) {
		ev.vars = append(ev.vars, map[string]any{})
		defer func() { ev.vars = ev.vars[:len(ev.vars)-1] }()
		pair, isPair := it.([]any)
		for i, name := range c.block.params {
			switch {
			case len(c.block.params) == 1:
				ev.set(name, it)
			case isPair && i < len(pair):
				ev.set(name, pair[i])
			}
		}
		return ev.eval(c.block.body)
	}
	var out []any
	for _, it := range items {
		v, err := call(it)
		if err != nil {
			return nil, err
		}
		switch c.name {
		case "map", "collect":
			out = append(out, v)
		case "flat_map":
			if a, ok := v.([]any); ok {
				out = append(out, a...)
			} else {
				out = append(out, v)
			}
		case "select", "filter":
			if truthy(v) {
				out = append(out, it)
			}
		case "reject":
			if !truthy(v) {
				out = append(out, it)
			}
		case "find", "detect":
			if truthy(v) {
				return it, nil
			}
		case "any?":
			if truthy(v) {
				return true, nil
			}
		case "all?":
			if !truthy(v) {
				return false, nil
			}
		case "count":
			if truthy(v) {
				out = append(out, it)
			}
		case "each", "each_with_index":
		default:
			return nil, errf("%s with a block is not in cairn's Ruby subset", c.name)
		}
	}
	switch c.name {
	case "find", "detect":
		return nil, nil
	case "any?":
		return false, nil
	case "all?":
		return true, nil
	case "count":
		return int64(len(out)), nil
	case "each", "each_with_index":
		return r, nil
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func names(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// property is p(name), p(name, default) and p([names…], default).
func property(props map[string]any, args []any, errf func(string, ...any) error) (any, error) {
	if len(args) == 0 || len(args) > 2 {
		return nil, errf("p takes a property name and an optional default")
	}
	var names []string
	switch n := args[0].(type) {
	case string:
		names = []string{n}
	case []any:
		for _, x := range n {
			names = append(names, toS(x))
		}
	default:
		return nil, errf("p takes a property name, not %s", typeName(args[0]))
	}
	for _, name := range names {
		if v, ok := lookup(props, name); ok && v != nil {
			return v, nil
		}
	}
	if len(args) == 2 {
		return args[1], nil
	}
	return nil, errf("Can't find property '%s'", strings.Join(names, "', '"))
}

// lookup finds a dotted name in nested maps.
func lookup(m map[string]any, name string) (any, bool) {
	var cur any = m
	for _, part := range strings.Split(name, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func method(r any, name string, args []any, errf func(string, ...any) error) (any, error) {
	if o, ok := r.(*object); ok {
		if o.kind == "link" {
			switch name {
			case "instances":
				out := make([]any, len(o.link.Instances))
				for i, in := range o.link.Instances {
					out[i] = &object{kind: "instance", fields: in}
				}
				return out, nil
			case "address":
				return o.link.Address, nil
			case "p":
				return property(o.link.Properties, args, errf)
			}
			return nil, errf("undefined method '%s' for a link", name)
		}
		if v, ok := o.fields[name]; ok && len(args) == 0 {
			if m, isMap := v.(map[string]any); isMap && o.kind == "spec" {
				return m, nil
			}
			return v, nil
		}
		return nil, errf("undefined method '%s' for %s", name, o.kind)
	}
	switch name {
	case "to_s":
		return toS(r), nil
	case "nil?":
		return r == nil, nil
	case "to_json":
		b, err := json.Marshal(plain(r))
		if err != nil {
			return nil, errf("to_json: %v", err)
		}
		return string(b), nil
	case "inspect":
		return inspect(r), nil
	case "to_i":
		switch v := r.(type) {
		case string:
			s := strings.TrimSpace(v)
			j := 0
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || j == 0 && s[j] == '-') {
				j++
			}
			n, _ := strconv.ParseInt(s[:j], 10, 64)
			return n, nil
		case int64:
			return v, nil
		case float64:
			return int64(v), nil
		case nil:
			return int64(0), nil
		}
	}
	if f, ok := num(r); ok {
		switch name {
		case "to_f":
			return f, nil
		case "round", "floor", "ceil":
			fn := map[string]func(float64) float64{"round": math.Round, "floor": math.Floor, "ceil": math.Ceil}[name]
			return int64(fn(f)), nil
		case "abs":
			return math.Abs(f), nil
		}
	}
	switch v := r.(type) {
	case string:
		switch name {
		case "upcase":
			return strings.ToUpper(v), nil
		case "downcase":
			return strings.ToLower(v), nil
		case "strip":
			return strings.TrimSpace(v), nil
		case "size", "length":
			return int64(len([]rune(v))), nil
		case "empty?":
			return v == "", nil
		case "include?", "start_with?", "end_with?":
			if len(args) != 1 {
				return nil, errf("%s takes one argument", name)
			}
			s := toS(args[0])
			switch name {
			case "include?":
				return strings.Contains(v, s), nil
			case "start_with?":
				return strings.HasPrefix(v, s), nil
			}
			return strings.HasSuffix(v, s), nil
		case "split":
			sep := " "
			if len(args) > 0 {
				sep = toS(args[0])
			}
			var out []any
			parts := strings.Split(v, sep)
			if sep == " " {
				parts = strings.Fields(v)
			}
			for _, p := range parts {
				out = append(out, p)
			}
			return out, nil
		}
	case []any:
		switch name {
		case "size", "length", "count":
			return int64(len(v)), nil
		case "empty?":
			return len(v) == 0, nil
		case "any?":
			return len(v) > 0, nil
		case "first", "last":
			if len(v) == 0 {
				return nil, nil
			}
			if name == "first" {
				return v[0], nil
			}
			return v[len(v)-1], nil
		case "join":
			sep := ""
			if len(args) > 0 {
				sep = toS(args[0])
			}
			parts := make([]string, len(v))
			for i, x := range v {
				parts[i] = toS(x)
			}
			return strings.Join(parts, sep), nil
		case "include?":
			if len(args) != 1 {
				return nil, errf("include? takes one argument")
			}
			for _, x := range v {
				if equal(x, args[0]) {
					return true, nil
				}
			}
			return false, nil
		case "compact":
			var out []any
			for _, x := range v {
				if x != nil {
					out = append(out, x)
				}
			}
			return out, nil
		case "uniq":
			var out []any
			for _, x := range v {
				dup := false
				for _, y := range out {
					dup = dup || equal(x, y)
				}
				if !dup {
					out = append(out, x)
				}
			}
			return out, nil
		case "sort":
			out := append([]any{}, v...)
			sort.SliceStable(out, func(i, j int) bool { return toS(out[i]) < toS(out[j]) })
			return out, nil
		}
	case map[string]any:
		switch name {
		case "size", "length", "count":
			return int64(len(v)), nil
		case "empty?":
			return len(v) == 0, nil
		case "keys", "values":
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([]any, len(keys))
			for i, k := range keys {
				if name == "keys" {
					out[i] = k
				} else {
					out[i] = v[k]
				}
			}
			return out, nil
		case "key?", "has_key?", "include?":
			if len(args) != 1 {
				return nil, errf("%s takes one argument", name)
			}
			_, ok := v[toS(args[0])]
			return ok, nil
		case "fetch":
			if len(args) == 0 || len(args) > 2 {
				return nil, errf("fetch takes a key and an optional default")
			}
			if x, ok := v[toS(args[0])]; ok {
				return x, nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return nil, errf("key not found: %q", toS(args[0]))
		}
	}
	return nil, errf("undefined method '%s' for %s (not in cairn's Ruby subset)", name, typeName(r))
}

func index(r, i any, errf func(string, ...any) error) (any, error) {
	switch v := r.(type) {
	case []any:
		n, ok := i.(int64)
		if !ok {
			return nil, errf("no implicit conversion of %s into Integer", typeName(i))
		}
		if n < 0 {
			n += int64(len(v))
		}
		if n < 0 || n >= int64(len(v)) {
			return nil, nil
		}
		return v[n], nil
	case map[string]any:
		return v[toS(i)], nil
	case *object:
		if v.fields != nil {
			return v.fields[toS(i)], nil
		}
	case nil:
		return nil, errf("undefined method '[]' for nil")
	}
	return nil, errf("[] of a %s is not in cairn's Ruby subset", typeName(r))
}

func truthy(v any) bool {
	if v == nil {
		return false
	}
	if b, ok := v.(bool); ok {
		return b
	}
	return true
}

func num(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func equal(a, b any) bool {
	if af, ok := num(a); ok {
		bf, ok := num(b)
		return ok && af == bf
	}
	return reflect.DeepEqual(plain(a), plain(b))
}

// plain turns objects into their maps, for to_json and comparison.
func plain(v any) any {
	switch x := v.(type) {
	case *object:
		if x.link != nil {
			return map[string]any{"address": x.link.Address, "properties": x.link.Properties}
		}
		return x.fields
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// toS is Ruby's to_s, as <%= %> writes a value.
func toS(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any, map[string]any, *object:
		return inspect(x)
	}
	return inspect(v)
}

// inspect is Ruby's inspect.
func inspect(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = inspect(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k) + "=>" + inspect(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *object:
		return "#<" + x.kind + ">"
	}
	return fmt.Sprint(v)
}

func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return "String"
	case int64:
		return "Integer"
	case float64:
		return "Float"
	case bool:
		return "a boolean"
	case []any:
		return "Array"
	case map[string]any:
		return "Hash"
	case *object:
		return x.kind
	}
	return fmt.Sprintf("%T", v)
}

// Normalize turns values decoded from YAML or JSON (int, uint64,
// json.Number, map[any]any, …) into the evaluator's own (int64, float64, string,
// bool, nil, []any, map[string]any).
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = Normalize(e)
		}
		return out
	}
	return v
}
