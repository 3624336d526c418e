package filter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"

	"github.com/cairnhq/cairn/journal"
)

// Filter is a compiled, type-checked boolean CEL expression over events. It
// is safe for concurrent use.
type Filter struct {
	src      string
	prog     cel.Program
	usesData bool
	cost     checker.CostEstimate
	limited  bool // a runtime cost limit applies
}

// CompileError is a CEL expression that does not compile: where (1-based
// line and column within the expression) and why.
type CompileError struct {
	Line, Col int
	Msg       string
}

// Error formats the error as "line:col: msg".
func (e *CompileError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

const (
	// maxValueSize bounds any string, bytes or map in an event for the cost
	// estimate: nothing in an event can exceed the 4 MiB a request line may
	// carry.
	maxValueSize = 4 << 20
	// costLimit is the runtime budget of one evaluation. An expression
	// whose static estimate is within it cannot exceed it and runs without
	// cost tracking; any other (comprehensions over nested data are
	// unbounded) runs with the limit, and hitting it is an error
	// (ErrCostLimit), never a quiet "no match". About a third of a second
	// of one core.
	costLimit = 1 << 20
	// interruptEvery is how many comprehension steps pass between checks of
	// the caller's context, so a client that leaves ends an evaluation.
	interruptEvery = 1000
)

// Compile parses and type-checks expr once. It refuses an expression that is
// not boolean, and a reference to an unknown variable or to an unknown field
// of a typed namespace, suggesting the nearest name. Errors are
// *CompileError.
func Compile(expr string) (*Filter, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("build cel environment: %w", err)
	}
	parsed, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, issueError(iss)
	}
	if err := checkNamespaces(parsed.NativeRep(), expr); err != nil {
		return nil, err
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, issueError(iss)
	}
	// dyn is accepted: `data.enabled` may well be a bool, and a value that
	// turns out not to be one simply does not match.
	switch t := checked.OutputType(); t.Kind() {
	case types.BoolKind, types.DynKind:
	default:
		return nil, &CompileError{Line: 1, Col: 1, Msg: "where expression must be boolean, got " + t.String()}
	}
	est, err := env.EstimateCost(checked, costEstimator{})
	if err != nil {
		return nil, fmt.Errorf("estimate cost of %q: %w", expr, err)
	}
	f := &Filter{src: expr, cost: est, usesData: usesData(checked.NativeRep().Expr())}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if est.Max > costLimit {
		f.limited = true
		opts = append(opts, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(interruptEvery))
	}
	if f.prog, err = env.Program(checked, opts...); err != nil {
		return nil, &CompileError{Line: 1, Col: 1, Msg: err.Error()}
	}
	return f, nil
}

// String returns the expression as written.
func (f *Filter) String() string { return f.src }

// UsesData reports whether the expression references `data`, the one part of
// an event that filtering must decode in full.
func (f *Filter) UsesData() bool { return f.usesData }

// MatchRaw reports whether a stored record matches. It reads only the fields
// the expression asks for. A malformed record, a field the event does not
// carry and an evaluation error all make it false.
func (f *Filter) MatchRaw(r *journal.Raw) bool {
	if r == nil || journal.CheckRecord(r.Record) != nil {
		return false
	}
	a := getRawActivation(r)
	out, _, err := f.prog.Eval(a)
	a.release()
	return err == nil && out == types.True
}

// ErrCostLimit is matched by the error of an evaluation that exceeded the
// expression's runtime cost limit.
var ErrCostLimit = errors.New("the expression exceeded its runtime cost limit")

// EvalError is an evaluation of an expression that could not finish.
type EvalError struct {
	Expr string
	Err  error // ErrCostLimit, or the context's error
}

func (e *EvalError) Error() string {
	if errors.Is(e.Err, ErrCostLimit) {
		return fmt.Sprintf("where %q: evaluating one event exceeded the cost limit (%d); make the expression cheaper, such as with fewer nested comprehensions", e.Expr, costLimit)
	}
	return fmt.Sprintf("where %q: %v", e.Expr, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// Match is MatchRaw for a request: an evaluation stopped by the cost limit
// or by ctx is an *EvalError, not a quiet "no match". Only expressions
// whose cost is unbounded can be stopped, and only they pay for the
// context checks.
func (f *Filter) Match(ctx context.Context, r *journal.Raw) (bool, error) {
	if !f.limited {
		return f.MatchRaw(r), nil
	}
	if r == nil || journal.CheckRecord(r.Record) != nil {
		return false, nil
	}
	a := getRawActivation(r)
	out, _, err := f.prog.ContextEval(ctx, a)
	a.release()
	if err != nil {
		if stopped := f.stopped(ctx, err); stopped != nil {
			return false, stopped
		}
		return false, nil // a missing field and the like: no match
	}
	return out == types.True, nil
}

// stopped returns the *EvalError of an evaluation the limit or ctx ended,
// or nil for an ordinary evaluation error.
func (f *Filter) stopped(ctx context.Context, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "cost limit exceeded"):
		return &EvalError{Expr: f.src, Err: ErrCostLimit}
	case strings.Contains(msg, "operation interrupted") || ctx.Err() != nil:
		if ctx.Err() != nil {
			return &EvalError{Expr: f.src, Err: ctx.Err()}
		}
		return &EvalError{Expr: f.src, Err: context.Canceled}
	}
	return nil
}

// MatchEvent reports whether a decoded event matches, with the same
// semantics as MatchRaw on its stored form.
func (f *Filter) MatchEvent(ev *journal.Event) bool {
	if ev == nil {
		return false
	}
	a := eventPool.Get().(*eventActivation)
	a.ev = ev
	out, _, err := f.prog.Eval(a)
	a.ev = nil
	eventPool.Put(a)
	return err == nil && out == types.True
}

// issueError turns the first of CEL's issues into a CompileError, adding a
// suggestion to undeclared references.
func issueError(iss *cel.Issues) error {
	errs := iss.Errors()
	first := errs[0]
	for _, e := range errs[1:] {
		if before(e.Location, first.Location) {
			first = e
		}
	}
	msg := first.Message
	const undeclared = "undeclared reference to '"
	if rest, ok := strings.CutPrefix(msg, undeclared); ok {
		if name, _, ok := strings.Cut(rest, "'"); ok {
			msg = undeclared + name + "'; " + suggestName(name)
		}
	}
	return &CompileError{Line: max(first.Location.Line(), 1), Col: max(first.Location.Column()+1, 1), Msg: msg}
}

func before(a, b common.Location) bool {
	if a.Line() != b.Line() {
		return a.Line() < b.Line()
	}
	return a.Column() < b.Column()
}

// checkNamespaces walks the parsed expression before type-checking, where a
// misspelt field would otherwise surface as "undeclared reference to
// 'proc'". It reports an unknown field of a typed namespace at the field's
// position, with the nearest known field, and rewrites `has(proc.name)`: the
// checker never resolves a presence test as a qualified name, so the test
// becomes a call of presentFunc on the field itself, true unless the field is
// missing.
func checkNamespaces(a *ast.AST, expr string) error {
	w := nsWalker{info: a.SourceInfo(), fac: ast.NewExprFactory(), shadow: map[string]int{}, src: []rune(expr)}
	w.nextID = ast.MaxID(a) + 1
	w.walk(a.Expr())
	if w.err != nil {
		return w.err
	}
	return nil
}

type nsWalker struct {
	info   *ast.SourceInfo
	fac    ast.ExprFactory
	nextID int64
	shadow map[string]int // comprehension variables in scope
	src    []rune         // the expression's code points, which CEL's offsets count
	err    *CompileError
}

func (w *nsWalker) walk(e ast.Expr) {
	if w.err != nil || e == nil {
		return
	}
	switch e.Kind() {
	case ast.SelectKind:
		sel := e.AsSelect()
		op := sel.Operand()
		// A name of three parts or more (evt.rawarg.res) is a select of a
		// select: it is checked whole, from its outermost select.
		if parts, ok := selectChain(e); ok && len(parts) > 2 && w.shadow[parts[0]] == 0 {
			if _, isNS := namespaces[parts[0]]; isNS {
				w.qualifiedField(e, sel, parts)
				return
			}
		}
		if op.Kind() == ast.IdentKind && w.shadow[op.AsIdent()] == 0 {
			name := op.AsIdent()
			if _, isNS := namespaces[name]; isNS {
				w.namespaceField(e, op, sel)
				return
			}
			if fieldsByName[name] == nil {
				// Neither a variable nor a namespace: the checker would
				// only say that name is undeclared; a near field such as
				// proc.name for prc.name says more.
				if hint, ok := suggestQualified(name, sel.FieldName()); ok {
					loc := w.info.GetStartLocation(op.ID())
					w.err = &CompileError{Line: max(loc.Line(), 1), Col: loc.Column() + 1,
						Msg: "undeclared reference to '" + name + "." + sel.FieldName() + "'; " + hint}
					return
				}
			}
		}
		w.walk(op)
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			w.walk(c.Target())
		}
		for _, arg := range c.Args() {
			w.walk(arg)
		}
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			w.walk(el)
		}
	case ast.MapKind:
		for _, ent := range e.AsMap().Entries() {
			w.walk(ent.AsMapEntry().Key())
			w.walk(ent.AsMapEntry().Value())
		}
	case ast.StructKind:
		for _, fld := range e.AsStruct().Fields() {
			w.walk(fld.AsStructField().Value())
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		w.walk(c.IterRange())
		w.walk(c.AccuInit())
		vars := []string{c.IterVar(), c.AccuVar()}
		if c.HasIterVar2() {
			vars = append(vars, c.IterVar2())
		}
		for _, v := range vars {
			w.shadow[v]++
		}
		w.walk(c.LoopCondition())
		w.walk(c.LoopStep())
		w.walk(c.Result())
		for _, v := range vars {
			w.shadow[v]--
		}
	}
}

// namespaceField checks ns.key and rewrites a presence test of it.
func (w *nsWalker) namespaceField(e, op ast.Expr, sel ast.SelectExpr) {
	ns, key := op.AsIdent(), sel.FieldName()
	if fieldsByName[ns+"."+key] == nil {
		line, col := w.fieldPosition(op, len(ns))
		w.err = &CompileError{Line: line, Col: col,
			Msg: "undeclared reference to '" + ns + "." + key + "'; " + suggestField(ns, key)}
		return
	}
	w.rewritePresence(e, sel)
}

// rewritePresence turns a presence test of a field, has(ns.key), into a
// call of presentFunc on the field itself; any other select is left.
func (w *nsWalker) rewritePresence(e ast.Expr, sel ast.SelectExpr) {
	if !sel.IsTestOnly() {
		return
	}
	id := w.nextID
	w.nextID++
	if r, ok := w.info.GetOffsetRange(e.ID()); ok {
		w.info.SetOffsetRange(id, r)
	}
	e.SetKindCase(w.fac.NewCall(e.ID(), presentFunc, w.fac.NewSelect(id, sel.Operand(), sel.FieldName())))
}

// selectChain returns the parts of a dotted name a.b.c written as
// selects on an identifier.
func selectChain(e ast.Expr) ([]string, bool) {
	var rev []string
	for e.Kind() == ast.SelectKind {
		rev = append(rev, e.AsSelect().FieldName())
		e = e.AsSelect().Operand()
	}
	if e.Kind() != ast.IdentKind {
		return nil, false
	}
	rev = append(rev, e.AsIdent())
	slices.Reverse(rev)
	return rev, true
}

// qualifiedField checks a field of three parts or more (evt.rawarg.res)
// and rewrites a presence test of it. A known field followed by more parts
// is left to the checker (a select on a value).
func (w *nsWalker) qualifiedField(e ast.Expr, sel ast.SelectExpr, parts []string) {
	name := strings.Join(parts, ".")
	if fieldsByName[name] == nil {
		for i := len(parts) - 1; i >= 2; i-- {
			if fieldsByName[strings.Join(parts[:i], ".")] != nil {
				return
			}
		}
		root := e
		for root.Kind() == ast.SelectKind {
			root = root.AsSelect().Operand()
		}
		line, col := w.fieldPosition(root, len(parts[0]))
		w.err = &CompileError{Line: line, Col: col,
			Msg: "undeclared reference to '" + name + "'; " + suggestField(parts[0], strings.Join(parts[1:], "."))}
		return
	}
	w.rewritePresence(e, sel)
}

// fieldPosition finds the 1-based line and column of the field name after
// the namespace identifier op (n runes long): past the identifier, the dot,
// and any blanks around it.
func (w *nsWalker) fieldPosition(op ast.Expr, n int) (line, col int) {
	r, ok := w.info.GetOffsetRange(op.ID())
	if !ok {
		loc := w.info.GetStartLocation(op.ID())
		return max(loc.Line(), 1), loc.Column() + 1
	}
	off := r.Start + int32(n)
	src := w.src
	for off < int32(len(src)) && (src[off] == '.' || src[off] == ' ' || src[off] == '\t' || src[off] == '\n' || src[off] == '\r') {
		off++
	}
	loc := w.info.GetLocationByOffset(off)
	return max(loc.Line(), 1), loc.Column() + 1
}

// usesData reports whether the checked expression reads the variable data.
func usesData(e ast.Expr) bool {
	found := false
	ast.PreOrderVisit(e, ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.IdentKind && e.AsIdent() == "data" {
			found = true
		}
	}))
	return found
}

// costEstimator tells CEL's static cost estimate how large event values can
// be, so that comparing a string field costs a bounded amount rather than
// an unbounded one.
type costEstimator struct{}

// EstimateSize bounds every value reachable from a variable.
func (costEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if len(n.Path()) > 0 {
		return &checker.SizeEstimate{Min: 0, Max: maxValueSize}
	}
	return nil
}

// EstimateCallCost leaves every call to CEL's own estimate.
func (costEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
