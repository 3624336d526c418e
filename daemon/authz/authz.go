// Package authz decides who may run what: the one place the daemon asks,
// for every statement on the socket and every write through its network
// listeners, before a handler runs.
//
// Root may do everything. A non-root caller (a member of the socket's
// group, or a local user on a loopback TCP connection) may do what the
// default policy allows — read, write the KV store, emit events of
// unreserved kinds — unless a rule of the operator's policy file grants or
// denies otherwise. Whatever acts on the host (infra apply, journal
// import, capture of other users' processes, and the runtime, build and
// deploy verbs to come) needs root or a grant. docs/security.md describes
// the model.
package authz

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// Access is what a verb does, as its spec declares it.
type Access int

// The access classes, from least to most.
const (
	// Read answers from what cairn holds: events, status, kv get, chisels.
	Read Access = iota
	// Write changes cairn's own state: KV writes, emit.
	Write
	// Host acts on the host or rewrites history: infra apply, journal
	// import, capture of other users' processes, containers, builds.
	Host
)

var accessNames = [...]string{"read", "write", "host"}

func (a Access) String() string {
	if a >= 0 && int(a) < len(accessNames) {
		return accessNames[a]
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Caller is who asks.
type Caller struct {
	UID, GID, PID int
	User, Comm    string
	Groups        []int
	Via           string // socket, http, etcd
	Addr          string
}

// Request is one decision's input.
type Request struct {
	Caller Caller
	Verb   string            // "infra apply", or an HTTP route's name
	Args   map[string]string // the statement's arguments and options by name
	Access Access
}

// Decision is the answer, with the reason a denial names.
type Decision struct {
	Allow  bool
	Reason string
	Rule   string // "FILE:LINE" of the deciding rule, "" for the built-in rules
}

// Policy is a compiled policy file; the zero Policy is the default policy.
// It is safe for concurrent use.
type Policy struct {
	path  string
	rules []rule
}

type rule struct {
	allow bool
	line  int
	src   string
	prog  cel.Program
}

// costLimit bounds one evaluation of a rule.
const costLimit = 1 << 20

// Parse compiles a policy file: one rule per line, `allow EXPR` or
// `deny EXPR`, EXPR a boolean CEL expression over `actor` (uid, gid, pid,
// user, comm, via, addr, groups), `verb` (string), `args` (map of strings)
// and `access` ("read", "write" or "host"); `#` starts a comment line.
// The first rule that matches decides; without a match, the default policy
// does. Errors name the file and line.
func Parse(path string, src []byte) (*Policy, error) {
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	p := &Policy{path: path}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, expr, _ := strings.Cut(line, " ")
		var allow bool
		switch word {
		case "allow":
			allow = true
		case "deny":
		default:
			return nil, fmt.Errorf("%s:%d: a rule starts with allow or deny, not %q", path, n, word)
		}
		expr = strings.TrimSpace(expr)
		if len(expr) >= 2 && (expr[0] == '\'' && expr[len(expr)-1] == '\'') {
			expr = expr[1 : len(expr)-1]
		}
		if expr == "" {
			return nil, fmt.Errorf("%s:%d: %s needs a CEL expression, such as %s actor.user == \"deploy\" && verb.startsWith(\"infra \")", path, n, word, word)
		}
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, iss.Err())
		}
		if ast.OutputType() != cel.BoolType {
			return nil, fmt.Errorf("%s:%d: the rule must be boolean, got %s", path, n, ast.OutputType())
		}
		prog, err := env.Program(ast, cel.CostLimit(costLimit))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		p.rules = append(p.rules, rule{allow: allow, line: n, src: expr, prog: prog})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, b)
}

func newEnv() (*cel.Env, error) {
	env, err := cel.NewEnv(
		cel.Variable("actor", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("verb", cel.StringType),
		cel.Variable("args", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("access", cel.StringType),
	)
	if err != nil {
		return nil, fmt.Errorf("policy environment: %w", err)
	}
	return env, nil
}

// Decide answers req. Root is always allowed; otherwise the first matching
// rule decides, then the default policy: read and write allowed, host
// denied.
func (p *Policy) Decide(req Request) Decision {
	if req.Caller.UID == 0 {
		return Decision{Allow: true, Reason: "root"}
	}
	if p != nil && len(p.rules) > 0 {
		vars := map[string]any{
			"actor": map[string]any{
				"uid": int64(req.Caller.UID), "gid": int64(req.Caller.GID), "pid": int64(req.Caller.PID),
				"user": req.Caller.User, "comm": req.Caller.Comm, "via": req.Caller.Via, "addr": req.Caller.Addr,
				"groups": groupList(req.Caller.Groups),
			},
			"verb":   req.Verb,
			"args":   nonNil(req.Args),
			"access": req.Access.String(),
		}
		for _, r := range p.rules {
			out, _, err := r.prog.Eval(vars)
			where := fmt.Sprintf("%s:%d", p.path, r.line)
			if err != nil {
				// A rule that cannot be judged denies: a policy error must
				// not open a door.
				return Decision{Reason: fmt.Sprintf("rule %s could not be evaluated (%v)", where, err), Rule: where}
			}
			if out == types.True {
				if r.allow {
					return Decision{Allow: true, Reason: "allowed by " + where, Rule: where}
				}
				return Decision{Reason: "denied by " + where, Rule: where}
			}
		}
	}
	switch req.Access {
	case Read, Write:
		return Decision{Allow: true, Reason: "default policy: " + req.Access.String()}
	}
	who := req.Caller.User
	if who == "" {
		who = fmt.Sprintf("uid %d", req.Caller.UID)
	}
	return Decision{Reason: fmt.Sprintf("%s acts on the host: it needs root, or a rule in the daemon's --policy file that allows it for %s (docs/security.md)", req.Verb, who)}
}

// Rules reports how many rules the policy has.
func (p *Policy) Rules() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

func groupList(gs []int) []int64 {
	out := make([]int64, len(gs))
	for i, g := range gs {
		out[i] = int64(g)
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ErrDenied is matched by the error a denied request gets.
var ErrDenied = errors.New("permission denied")
