package filter

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/cairnhq/cairn/journal"
)

// FieldGetter reads one field of stored records by its CEL name, walking the
// stored CBOR only as far as that field, as MatchRaw does. Chisels use it for
// chisel.request_field. It holds no state between calls and is safe for
// concurrent use.
type FieldGetter struct {
	name  string
	f     *field   // nil for a path into data
	path  []string // data.a.b → a, b
	never bool     // a field cairn's events never carry (evt.arg[5]): always missing
	// ancestor N ≥ 1 reads proc.aname[N] (or proc.apid[N], pids) from
	// the event's ancestry.
	ancestor int
	pids     bool
}

// Field returns the getter of a field a filter can name: one of Fields(), or
// a path into the event's data such as data.value or data.ops. An unknown
// name is an error that suggests the nearest field.
func Field(name string) (*FieldGetter, error) {
	if f := fieldsByName[name]; f != nil {
		return &FieldGetter{name: name, f: f}, nil
	}
	if g, ok := indexedField(name); ok {
		return g, nil
	}
	// sysdig's evt.arg.NAME and evt.rawarg.NAME: the argument NAME, which
	// cairn keeps in data (the declared ones, such as evt.arg.fd, are above).
	for _, prefix := range []string{"evt.arg.", "evt.rawarg."} {
		if arg, ok := strings.CutPrefix(name, prefix); ok && arg != "" && !strings.Contains(arg, ".") {
			return &FieldGetter{name: name, path: []string{arg}}, nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "data."); ok {
		path := strings.Split(rest, ".")
		for _, p := range path {
			if p == "" {
				return nil, fmt.Errorf("field %q: empty key in the data path; write data.KEY or data.KEY.SUBKEY", name)
			}
		}
		return &FieldGetter{name: name, path: path}, nil
	}
	return nil, fmt.Errorf("unknown field %q; %s", name, suggestFieldName(name))
}

// suggestFieldName completes the message for an unknown field name.
func suggestFieldName(name string) string {
	if ns, key, ok := strings.Cut(name, "."); ok {
		if _, isNS := namespaces[ns]; isNS {
			return suggestField(ns, key)
		}
		if hint, ok := suggestQualified(ns, key); ok {
			return hint
		}
	}
	if _, isNS := namespaces[name]; isNS {
		return name + " is not a value; use one of its fields: " + qualify(name, namespaces[name])
	}
	if c, ok := nearest(name, fieldNames); ok {
		return "did you mean " + c + "?"
	}
	return "known fields are " + strings.Join(fieldNames, ", ") + " and data.KEY"
}

// FieldType returns the type of a named field (not a data path) as Type
// does, and whether the field exists: the sysdig filter translator writes
// its literals by it.
func FieldType(name string) (string, bool) {
	f := fieldsByName[name]
	if f == nil {
		return "", false
	}
	return (&FieldGetter{name: name, f: f}).Type(), true
}

// Name returns the field's name as it was asked for.
func (g *FieldGetter) Name() string { return g.name }

// Type returns the CEL type of the field: "string", "int", "timestamp"
// (Get returns ns since the epoch) or "dyn" (data and paths into it).
func (g *FieldGetter) Type() string {
	if g.f == nil {
		return "dyn"
	}
	switch g.f.celType() {
	case cel.BoolType:
		return "bool"
	case cel.DoubleType:
		return "double"
	case cel.StringType:
		return "string"
	case cel.IntType:
		return "int"
	case cel.TimestampType:
		return "timestamp"
	}
	return "dyn"
}

// Get returns the field's value in r: a string, an int64 (integers, and
// times as ns since the epoch), a float64 or a bool; data, and maps and
// arrays inside it, as journal.DecodeValue decodes them (map[string]any,
// []any). ok is false when the event does not carry the field, when it is
// null and when the record is malformed. A returned string never aliases the
// record, so it outlives it.
func (g *FieldGetter) Get(r *journal.Raw) (v any, ok bool) {
	if g.never || r == nil || journal.CheckRecord(r.Record) != nil {
		return nil, false
	}
	if g.ancestor > 0 {
		return g.getAncestor(r)
	}
	if g.f != nil {
		switch g.f.kind {
		case kSeq:
			return r.Seq, true
		case kOne:
			return int64(1), true
		case kStream:
			return r.Stream, true
		case kCommit:
			return r.Time(), true
		case kPrev:
			h := r.Prev()
			return hex.EncodeToString(h[:]), true
		case kHash:
			h := r.Hash()
			return hex.EncodeToString(h[:]), true
		case kDerived:
			a := getRawActivation(r)
			defer a.release()
			return goValue(g.f.derive(a))
		}
	}
	var idx bodyIndex
	idx.reset(r.Body())
	body := idx.body
	if g.f == nil || g.f.kind == kData {
		start, _, ok := idx.value(topData)
		if !ok {
			return nil, false
		}
		for _, key := range g.path {
			if start, ok = mapLookup(body, start, key); !ok {
				return nil, false
			}
		}
		return readAny(body, start)
	}
	i, ok := idx.lookup(g.f)
	if !ok {
		return nil, false
	}
	switch g.f.kind {
	case kString:
		if s, ok := readText(body, i); ok {
			return strings.Clone(s), true
		}
	case kInt, kTime:
		if n, ok := readInt(body, i); ok {
			return n, true
		}
	}
	return nil, false
}

// readAny returns the data item at p[i] as a Go value: scalars with the
// walker, maps and arrays with journal.DecodeValue.
func readAny(p []byte, i int) (any, bool) {
	major, info, _, _, ok := head(p, i)
	if !ok {
		return nil, false
	}
	switch major {
	case majorUint, majorNegint:
		return readInt(p, i)
	case majorText:
		s, ok := readText(p, i)
		return strings.Clone(s), ok
	case majorSimple:
		switch info {
		case 20:
			return false, true
		case 21:
			return true, true
		case 25, 26, 27:
			return readFloat(p, i)
		}
		return nil, false // null, undefined
	}
	end, ok := skip(p, i)
	if !ok {
		return nil, false
	}
	var v any
	if err := journal.DecodeValue(p[i:end], &v); err != nil || v == nil {
		return nil, false
	}
	return v, true
}

// goValue is a derived field's CEL value as Get returns values.
func goValue(v any) (any, bool) {
	switch x := v.(type) {
	case types.String:
		return strings.Clone(string(x)), true
	case types.Int:
		return int64(x), true
	case types.Bool:
		return bool(x), true
	case types.Double:
		return float64(x), true
	}
	return nil, false
}

// indexedField reads sysdig's indexed fields. evt.arg[N] and
// evt.rawarg[N] are the exit event's arguments by position as sysdig lays
// out an I/O syscall's (0: the result, 1: the buffer). proc.aname[N] and
// proc.apid[N] are the ancestors' names and pids: 0 the process, 1 its
// parent, and so on up the ancestry the event carries (16 deep from
// capture run); past its top, missing (nil), where sysdig's chisels stop.
func indexedField(name string) (*FieldGetter, bool) {
	base, idx, ok := strings.Cut(name, "[")
	if !ok || !strings.HasSuffix(idx, "]") {
		return nil, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
	if err != nil || n < 0 {
		return nil, false
	}
	switch base {
	case "evt.arg", "evt.rawarg":
		to := []string{"evt.rawarg.res", "evt.buffer"}
		if n >= len(to) {
			return &FieldGetter{name: name, never: true}, true
		}
		return &FieldGetter{name: name, f: fieldsByName[to[n]]}, true
	case "proc.aname", "proc.apid":
		if n == 0 {
			return &FieldGetter{name: name, f: fieldsByName[map[string]string{"proc.aname": "proc.name", "proc.apid": "proc.pid"}[base]]}, true
		}
		return &FieldGetter{name: name, ancestor: n, pids: base == "proc.apid"}, true
	}
	return nil, false
}

// getAncestor reads the n-th ancestor's name or pid from the record.
func (g *FieldGetter) getAncestor(r *journal.Raw) (any, bool) {
	ev, err := r.Decode()
	if err != nil || ev.Proc == nil {
		return nil, false
	}
	p := ev.Proc
	switch {
	case g.ancestor <= len(p.Ancestors):
		a := p.Ancestors[g.ancestor-1]
		if g.pids {
			return a.PID, true
		}
		return a.Name, true
	case g.ancestor == 1 && len(p.Ancestors) == 0 && p.PPID > 0:
		// A source that names no ancestry still knows the parent.
		if g.pids {
			return p.PPID, true
		}
		return p.PName, p.PName != ""
	}
	return nil, false
}
