package dsl

import (
	"fmt"
	"slices"
	"strings"
)

// maxVerbWords is the longest verb path, as in "kv lease grant".
const maxVerbWords = 3

// Arg declares a positional argument.
type Arg struct {
	Name     string // metavariable shown in usage, such as KEY
	Help     string
	Required bool
	Variadic bool // takes every remaining positional word (Statement.Rest); last only
}

// Flag declares a bare flag word, such as "prefix" or "reverse".
type Flag struct {
	Name, Help string
}

// OptionKind says how an option's value is checked at parse time.
type OptionKind int

// The option kinds.
const (
	String    OptionKind = iota // any word
	Int                         // a base-10 integer
	Duration                    // a Go duration or plain seconds
	Time                        // RFC 3339, or a duration meaning that long ago
	SeqOrTime                   // an integer is a seq, anything else a Time (at=, since=)
)

var kindNames = [...]string{"string", "int", "duration", "time", "seq-or-time"}

// String names the kind.
func (k OptionKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("OptionKind(%d)", int(k))
}

// meta is the default metavariable of the kind in usage lines.
func (k OptionKind) meta() string {
	switch k {
	case Int:
		return "N"
	case Duration:
		return "D"
	case Time:
		return "T"
	case SeqOrTime:
		return "SEQ|T"
	}
	return "S"
}

// Option declares a NAME=VALUE option.
type Option struct {
	Name, Help string
	Kind       OptionKind
	Repeatable bool
	Meta       string // metavariable in usage (lease=ID); defaults by Kind
}

// Access says what a verb does, for the daemon's authorization
// (docs/security.md). The zero value is "not declared", which registration
// refuses: a new verb cannot forget to say.
type Access int

// The access classes.
const (
	AccessRead  Access = iota + 1 // answers from what cairn holds
	AccessWrite                   // changes cairn's own state (KV, emit)
	AccessHost                    // acts on the host or rewrites history
)

var accessNames = [...]string{"", "read", "write", "host"}

// String names the class: read, write or host.
func (a Access) String() string {
	if a > 0 && int(a) < len(accessNames) {
		return accessNames[a]
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Spec is one verb's entry in the verb table.
type Spec struct {
	Verb      string // words of the verb path: "status", "kv put", "journal verify"
	Summary   string // one line
	Help      string // longer text, examples
	Args      []Arg
	Flags     []Flag
	Options   []Option
	Bag       bool     // accepts key=value pairs that are not declared options (emit)
	BagPrefix string   // if set, only keys with this prefix go to the bag ("var.")
	Where     bool     // accepts `where 'CEL'`; only options, flags and a pipe may follow it
	Raw       bool     // accepts `-- raw args…`: everything after -- verbatim
	Sections  []string // keywords that start lists of words, such as if/then/else of kv txn
	Stream    bool     // the answer is a stream (events, tail, watch); informational
	Access    Access   // what the verb does (required)
	Pipe      bool     // its events may feed `| chisel NAME`
	// Client marks a verb the CLI runs itself (it reads or writes files on
	// the client's side, or traces as the caller); its daemon handler, if
	// any, serves the CLI's requests or says to use the CLI.
	Client bool
	// ClientFile names the positional that, when it is a path on the
	// client's disk (contains a / or ends in .lua), the CLI reads and sends
	// as the source= option (chisel ./my.lua).
	ClientFile string
	// Handler is the verb's implementation, kept with its spec so that the
	// table is the one registry from CLI to daemon (the daemon's is an
	// engines.Handler). dsl never looks at it.
	Handler any
}

func (s *Spec) flag(name string) bool {
	return slices.ContainsFunc(s.Flags, func(f Flag) bool { return f.Name == name })
}

func (s *Spec) option(name string) *Option {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}

// Table is the verb table: every verb's Spec, and the verb groups ("kv",
// "journal") their paths form. It is safe for concurrent reads once
// registration is done.
type Table struct {
	verbs  map[string]*Spec
	groups map[string][]string // verb path prefix -> sorted next words ("" -> first words)
	specs  []*Spec             // sorted by Verb
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{verbs: map[string]*Spec{}, groups: map[string][]string{}}
}

// Register adds a verb. It panics on a duplicate verb or an invalid spec, which
// are programming errors found by the first test that builds the table.
func (t *Table) Register(s Spec) {
	if err := validate(&s); err != nil {
		panic("dsl: register " + fmt.Sprintf("%q", s.Verb) + ": " + err.Error())
	}
	if _, dup := t.verbs[s.Verb]; dup {
		panic(fmt.Sprintf("dsl: duplicate verb %q", s.Verb))
	}
	sp := &s
	t.verbs[s.Verb] = sp
	i, _ := slices.BinarySearchFunc(t.specs, s.Verb, func(x *Spec, v string) int { return strings.Compare(x.Verb, v) })
	t.specs = slices.Insert(t.specs, i, sp)
	words := strings.Split(s.Verb, " ")
	for k := range words {
		prefix := strings.Join(words[:k], " ")
		next := t.groups[prefix]
		if j, found := slices.BinarySearch(next, words[k]); !found {
			t.groups[prefix] = slices.Insert(next, j, words[k])
		}
	}
}

func validate(s *Spec) error {
	words := strings.Split(s.Verb, " ")
	if len(words) > maxVerbWords {
		return fmt.Errorf("a verb has at most %d words", maxVerbWords)
	}
	for _, w := range words {
		if !isPlain(w) {
			return fmt.Errorf("verb word %q is not a plain word", w)
		}
	}
	if s.Access < AccessRead || s.Access > AccessHost {
		return fmt.Errorf("no access class: declare Access (dsl.AccessRead, AccessWrite or AccessHost; docs/security.md)")
	}
	if s.ClientFile != "" && !slices.ContainsFunc(s.Args, func(a Arg) bool { return a.Name == s.ClientFile }) {
		return fmt.Errorf("ClientFile %q is not an argument", s.ClientFile)
	}
	names := map[string]string{}
	claim := func(name, what string) error {
		if prev, ok := names[name]; ok {
			return fmt.Errorf("%s %q is also a %s", what, name, prev)
		}
		names[name] = what
		return nil
	}
	if s.Where {
		names["where"] = "where clause"
	}
	optional := false
	for i, a := range s.Args {
		if a.Name == "" {
			return fmt.Errorf("argument %d has no name", i+1)
		}
		if a.Variadic && i != len(s.Args)-1 {
			return fmt.Errorf("variadic argument %q is not last", a.Name)
		}
		if a.Required && optional {
			return fmt.Errorf("required argument %q follows an optional one", a.Name)
		}
		optional = optional || !a.Required
		if slices.ContainsFunc(s.Args[:i], func(b Arg) bool { return b.Name == a.Name }) {
			return fmt.Errorf("argument %q declared twice", a.Name)
		}
	}
	for _, f := range s.Flags {
		if !isPlain(f.Name) {
			return fmt.Errorf("flag %q is not a plain word", f.Name)
		}
		if err := claim(f.Name, "flag"); err != nil {
			return err
		}
	}
	for _, kw := range s.Sections {
		if !isPlain(kw) {
			return fmt.Errorf("section keyword %q is not a plain word", kw)
		}
		if err := claim(kw, "section keyword"); err != nil {
			return err
		}
	}
	for _, o := range s.Options {
		if !isName(o.Name) {
			return fmt.Errorf("option %q is not a name", o.Name)
		}
		if o.Kind < String || o.Kind > SeqOrTime {
			return fmt.Errorf("option %q has an unknown kind %d", o.Name, int(o.Kind))
		}
		if err := claim(o.Name+"=", "option"); err != nil {
			return err
		}
	}
	if s.BagPrefix != "" && (!s.Bag || !isName(s.BagPrefix)) {
		return fmt.Errorf("bag prefix %q needs Bag and must start like a name", s.BagPrefix)
	}
	return nil
}

// Lookup returns the spec of a verb path such as "kv put".
func (t *Table) Lookup(verb string) (*Spec, bool) {
	s, ok := t.verbs[strings.Join(strings.Fields(verb), " ")]
	return s, ok
}

// Specs returns every spec sorted by Verb. The slice is a copy; the specs are
// shared and must not be changed.
func (t *Table) Specs() []*Spec {
	return slices.Clone(t.specs)
}

// resolve finds the verb of a statement: the longest run of leading bare words
// that names a registered verb. It returns the spec and how many tokens it took.
func (t *Table) resolve(toks []token, text string, end Pos) (*Spec, int, error) {
	var wordsBuf [maxVerbWords]string
	words := wordsBuf[:0]
	for _, tk := range toks {
		if tk.kind != tokWord || tk.quoted || len(words) == maxVerbWords {
			break
		}
		words = append(words, tk.text)
	}
	// The candidates, longest first, joined in a buffer of the stack: a
	// map lookup by string(bytes) does not allocate, and this runs for
	// every request.
	var keyBuf [128]byte
	for k := len(words); k > 0; k-- {
		key := keyBuf[:0]
		for i, w := range words[:k] {
			if i > 0 {
				key = append(key, ' ')
			}
			key = append(key, w...)
		}
		if s, ok := t.verbs[string(key)]; ok {
			return s, k, nil
		}
	}
	j := 0 // the longest leading run that is a verb group
	for k := len(words); k > 0; k-- {
		if _, ok := t.groups[strings.Join(words[:k], " ")]; ok {
			j = k
			break
		}
	}
	first := toks[0]
	switch {
	case j > 0 && j < len(words):
		next := t.groups[strings.Join(words[:j], " ")]
		return nil, 0, errorf(toks[j].pos, Nearest(words[j], next), "unknown verb %q in %q", words[j], text)
	case j > 0:
		group := strings.Join(words[:j], " ")
		p := end
		if j < len(toks) {
			p = toks[j].pos
		}
		return nil, 0, errorf(p, "", "incomplete verb %q: it is followed by one of %s", group, strings.Join(t.groups[group], ", "))
	case first.kind == tokPipe:
		return nil, 0, errorf(first.pos, "", `expected a verb before "|"`)
	case first.quoted:
		return nil, 0, errorf(first.pos, Nearest(first.text, t.groups[""]), "expected a verb, found the quoted word %q (a verb is never quoted)", first.text)
	}
	return nil, 0, errorf(first.pos, Nearest(first.text, t.groups[""]), "unknown verb %q", first.text)
}
