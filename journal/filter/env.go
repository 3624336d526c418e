// Package filter compiles the CEL expressions cairn filters events with
// (`where`, chisel filters, alert conditions, routing) and evaluates them
// against stored records without decoding more of a record than the
// expression reads.
package filter

import (
	"slices"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/cairnhq/cairn/journal"
)

// valueKind is how a field's value is read from CBOR and handed to CEL.
type valueKind uint8

const (
	kString  valueKind = iota // CBOR text string → CEL string
	kInt                      // CBOR integer → CEL int
	kTime                     // CBOR integer, ns since the epoch → CEL timestamp
	kData                     // the whole `data` map, decoded on demand
	kSeq                      // Raw.Seq
	kOne                      // 1 for every event: sysdig's evt.count, summed by table_generator
	kStream                   // Raw.Stream
	kCommit                   // Raw.Time(), the commit time
	kPrev                     // Raw.Prev() in hex
	kHash                     // Raw.Hash() in hex
	kDerived                  // computed from other fields by derive (sysdig's names: evt.is_io, fd.num, …)
	kBool                     // a derived field's CEL bool (out only)
	kDouble                   // a derived field's CEL double (out only)
)

// topKey names the top-level keys of a stored body that filters read.
type topKey uint8

const (
	topNone topKey = iota // not in the body: seq, stream, time, prev, hash
	topKind
	topSubject
	topNode
	topActor
	topData
	topEvt
	topProc
	topUser
	topFD
	topContainer
	nTop
)

// topNames are the CBOR keys of the body (journal.Body's cbor tags).
var topNames = [nTop]string{
	topKind:      "kind",
	topSubject:   "subject",
	topNode:      "node",
	topActor:     "actor",
	topData:      "data",
	topEvt:       "evt",
	topProc:      "proc",
	topUser:      "user",
	topFD:        "fd",
	topContainer: "container",
}

// scalar is a field's value read from a decoded Event.
type scalar struct {
	s string
	i int64
}

// field is one CEL variable. A field of a namespace (proc.name) is its own
// dotted variable: cel-go's checker resolves the qualified identifier
// `proc.name` against declared dotted names before it tries field selection,
// so no object types are needed and the activation is asked for "proc.name"
// directly.
type field struct {
	name string
	kind valueKind
	top  topKey // where the value lives in the body
	key  string // key inside the top-level map; "" for a top-level value
	// omitEmpty mirrors the `omitempty` of the field's cbor tag: a zero value
	// is not stored, so MatchEvent must treat it as missing too.
	omitEmpty bool
	// repeats marks fields whose values recur from event to event (kinds,
	// nodes, uids, process names): MatchRaw keeps the last value it boxed
	// for CEL and reuses it while the value stays the same, which saves the
	// allocation. Subjects, pids and times are not worth it.
	repeats bool
	// event reads the field from a decoded event; ok is false when the
	// enclosing object is absent.
	event func(ev *journal.Event) (v scalar, ok bool)
	idx   int // position in fields
	// A derived field (kind kDerived) is computed by derive from the
	// fields the reader resolves; out is its type (kString, kInt, kBool).
	derive func(r fieldReader) any
	out    valueKind
	// ns names the field's namespace for suggestions when it is not its
	// top-level object's (thread.tid lives in proc).
	ns string
	// hidden fields are read by derived ones only: no filter names them.
	hidden bool
}

func (f *field) celType() *cel.Type {
	kind := f.kind
	if kind == kDerived {
		kind = f.out
	}
	switch kind {
	case kBool:
		return cel.BoolType
	case kDouble:
		return cel.DoubleType
	case kString, kStream, kPrev, kHash:
		return cel.StringType
	case kInt, kSeq, kOne:
		return cel.IntType
	case kTime, kCommit:
		return cel.TimestampType
	default:
		return cel.MapType(cel.StringType, cel.DynType)
	}
}

func str(s string) scalar { return scalar{s: s} }
func num(i int64) scalar  { return scalar{i: i} }

// fields is every variable filters can use. Namespace keys follow the cbor
// tags of journal's Actor, Evt, Proc, User, FD and Container.
var fields = []*field{
	{name: "seq", kind: kSeq},
	{name: "evt.count", kind: kOne},
	{name: "stream", repeats: true, kind: kStream},
	{name: "time", kind: kCommit},
	{name: "prev", kind: kPrev},
	{name: "hash", kind: kHash},
	{name: "kind", repeats: true, kind: kString, top: topKind, event: func(ev *journal.Event) (scalar, bool) { return str(ev.Kind), true }},
	{name: "subject", kind: kString, top: topSubject, event: func(ev *journal.Event) (scalar, bool) { return str(ev.Subject), true }},
	{name: "node", repeats: true, kind: kString, top: topNode, event: func(ev *journal.Event) (scalar, bool) { return str(ev.Node), true }},
	{name: "data", kind: kData, top: topData},

	{name: "actor.uid", repeats: true, kind: kInt, top: topActor, key: "uid", event: func(ev *journal.Event) (scalar, bool) { return num(int64(ev.Actor.UID)), true }},
	{name: "actor.gid", repeats: true, kind: kInt, top: topActor, key: "gid", event: func(ev *journal.Event) (scalar, bool) { return num(int64(ev.Actor.GID)), true }},
	{name: "actor.pid", kind: kInt, top: topActor, key: "pid", event: func(ev *journal.Event) (scalar, bool) { return num(int64(ev.Actor.PID)), true }},
	{name: "actor.user", repeats: true, kind: kString, top: topActor, key: "user", omitEmpty: true, event: func(ev *journal.Event) (scalar, bool) { return str(ev.Actor.User), true }},
	{name: "actor.comm", repeats: true, kind: kString, top: topActor, key: "comm", omitEmpty: true, event: func(ev *journal.Event) (scalar, bool) { return str(ev.Actor.Comm), true }},
	{name: "actor.via", repeats: true, kind: kString, top: topActor, key: "via", event: func(ev *journal.Event) (scalar, bool) { return str(ev.Actor.Via), true }},
	{name: "actor.addr", kind: kString, top: topActor, key: "addr", omitEmpty: true, event: func(ev *journal.Event) (scalar, bool) { return str(ev.Actor.Addr), true }},

	{name: "evt.type", repeats: true, kind: kString, top: topEvt, key: "type", omitEmpty: true, event: evtField(func(e *journal.Evt) scalar { return str(e.Type) })},
	{name: storedEvtNum, kind: kInt, top: topEvt, key: "num", hidden: true, omitEmpty: true, event: evtField(func(e *journal.Evt) scalar { return num(e.Num) })},
	{name: "evt.time", kind: kTime, top: topEvt, key: "time", omitEmpty: true, event: evtField(func(e *journal.Evt) scalar { return num(e.Time) })},
	{name: "evt.res", kind: kInt, top: topEvt, key: "res", omitEmpty: true, event: evtField(func(e *journal.Evt) scalar { return num(e.Res) })},
	{name: "evt.latency", kind: kInt, top: topEvt, key: "latency", omitEmpty: true, event: evtField(func(e *journal.Evt) scalar { return num(e.Latency) })},

	{name: "proc.name", repeats: true, kind: kString, top: topProc, key: "name", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return str(p.Name) })},
	{name: "proc.pid", kind: kInt, top: topProc, key: "pid", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return num(p.PID) })},
	{name: "proc.ppid", kind: kInt, top: topProc, key: "ppid", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return num(p.PPID) })},
	{name: "proc.cmdline", kind: kString, top: topProc, key: "cmdline", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return str(p.Cmdline) })},
	{name: "proc.exe", repeats: true, kind: kString, top: topProc, key: "exe", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return str(p.Exe) })},
	{name: "proc.cwd", kind: kString, top: topProc, key: "cwd", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return str(p.Cwd) })},
	{name: storedComm, kind: kString, top: topProc, key: "comm", hidden: true, omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return str(p.Comm) })},
	{name: "proc.loginshellid", kind: kInt, top: topProc, key: "loginshellid", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return num(p.LoginShellID) })},
	{name: "proc.pname", kind: kString, top: topProc, key: "pname", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return str(p.PName) })},
	{name: "thread.tid", kind: kInt, top: topProc, key: "tid", ns: "thread", omitEmpty: true, event: procField(func(p *journal.Proc) scalar { return num(p.TID) })},

	{name: "user.name", repeats: true, kind: kString, top: topUser, key: "name", omitEmpty: true, event: userField(func(u *journal.User) scalar { return str(u.Name) })},
	{name: "user.uid", repeats: true, kind: kInt, top: topUser, key: "uid", event: userField(func(u *journal.User) scalar { return num(u.UID) })},

	{name: "fd.name", kind: kString, top: topFD, key: "name", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return str(f.Name) })},
	{name: "fd.type", repeats: true, kind: kString, top: topFD, key: "type", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return str(f.Type) })},
	{name: "fd.sip", kind: kString, top: topFD, key: "sip", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return str(f.SIP) })},
	{name: "fd.sport", kind: kInt, top: topFD, key: "sport", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return num(f.SPort) })},
	{name: "fd.cip", kind: kString, top: topFD, key: "cip", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return str(f.CIP) })},
	{name: "fd.cport", kind: kInt, top: topFD, key: "cport", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return num(f.CPort) })},
	{name: "fd.l4proto", repeats: true, kind: kString, top: topFD, key: "l4proto", omitEmpty: true, event: fdField(func(f *journal.FD) scalar { return str(f.L4Proto) })},

	{name: "container.id", repeats: true, kind: kString, top: topContainer, key: "id", omitEmpty: true, event: func(ev *journal.Event) (scalar, bool) {
		if ev.Container == nil {
			return scalar{}, false
		}
		return str(ev.Container.ID), true
	}},
	{name: storedContainerName, kind: kString, top: topContainer, key: "name", hidden: true, omitEmpty: true, event: containerField(func(c *journal.Container) scalar { return str(c.Name) })},
	{name: "container.image", kind: kString, top: topContainer, key: "image", omitEmpty: true, event: containerField(func(c *journal.Container) scalar { return str(c.Image) })},
}

func containerField(get func(*journal.Container) scalar) func(*journal.Event) (scalar, bool) {
	return func(ev *journal.Event) (scalar, bool) {
		if ev.Container == nil {
			return scalar{}, false
		}
		return get(ev.Container), true
	}
}

func evtField(get func(*journal.Evt) scalar) func(*journal.Event) (scalar, bool) {
	return func(ev *journal.Event) (scalar, bool) {
		if ev.Evt == nil {
			return scalar{}, false
		}
		return get(ev.Evt), true
	}
}

func procField(get func(*journal.Proc) scalar) func(*journal.Event) (scalar, bool) {
	return func(ev *journal.Event) (scalar, bool) {
		if ev.Proc == nil {
			return scalar{}, false
		}
		return get(ev.Proc), true
	}
}

func userField(get func(*journal.User) scalar) func(*journal.Event) (scalar, bool) {
	return func(ev *journal.Event) (scalar, bool) {
		if ev.User == nil {
			return scalar{}, false
		}
		return get(ev.User), true
	}
}

func fdField(get func(*journal.FD) scalar) func(*journal.Event) (scalar, bool) {
	return func(ev *journal.Event) (scalar, bool) {
		if ev.FD == nil {
			return scalar{}, false
		}
		return get(ev.FD), true
	}
}

// namespaces maps each typed object (actor, evt, proc, …) to its fields'
// short names, sorted; it is what unknown-field suggestions search.
var (
	fieldsByName = map[string]*field{}
	namespaces   = map[string][]string{}
	fieldNames   []string
)

func init() {
	fields = append(fields, sysdigFields...)
	fields = append(fields, logsFields...)
	for i, f := range fields {
		f.idx = i
		if fieldsByName[f.name] != nil {
			panic("filter: duplicate field " + f.name)
		}
		fieldsByName[f.name] = f
		if f.hidden {
			continue
		}
		fieldNames = append(fieldNames, f.name)
		if f.key != "" {
			ns := topNames[f.top]
			if f.ns != "" {
				ns = f.ns
			}
			namespaces[ns] = append(namespaces[ns], f.key)
		}
	}
	slices.Sort(fieldNames)
	for _, keys := range namespaces {
		slices.Sort(keys)
	}
}

// Fields returns the name of every variable a filter can use, sorted:
// envelope fields (seq, time, kind, …), the qualified fields of the typed
// namespaces (actor.uid, proc.name, …) and data.
func Fields() []string { return slices.Clone(fieldNames) }

// presentFunc is the function `has(proc.name)` is rewritten to (see
// rewriteHas). Its name cannot be written in CEL source, so users cannot
// call it.
const presentFunc = "@cairn_present"

// newEnv builds the CEL environment shared by every filter.
var newEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.Function(presentFunc,
			cel.Overload("cairn_present_dyn", []*cel.Type{cel.DynType}, cel.BoolType,
				cel.OverloadIsNonStrict(),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.Bool(!types.IsUnknownOrError(v))
				}))),
	}
	for _, f := range fields {
		if !f.hidden {
			opts = append(opts, cel.Variable(f.name, f.celType()))
		}
	}
	return cel.NewEnv(opts...)
})
