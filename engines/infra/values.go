package infra

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// ctyType is the cty type of a provider attribute type.
func ctyType(t provider.Type) cty.Type {
	switch t {
	case provider.Number:
		return cty.Number
	case provider.Bool:
		return cty.Bool
	case provider.StringList:
		return cty.List(cty.String)
	case provider.StringMap:
		return cty.Map(cty.String)
	case provider.Dynamic, provider.Blocks:
		return cty.DynamicPseudoType
	}
	return cty.String
}

// toGo converts a known, unmarked cty value to the provider's Go value of
// type t; null becomes nil.
func toGo(v cty.Value, t provider.Type) (any, error) {
	if t == provider.Dynamic {
		if v.IsNull() {
			return nil, nil
		}
		b, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, err
		}
		return decodeJSON(b)
	}
	v, err := convert.Convert(v, ctyType(t))
	if err != nil {
		return nil, err
	}
	if v.IsNull() {
		return nil, nil
	}
	switch t {
	case provider.Number:
		bf := v.AsBigFloat()
		i, acc := bf.Int64()
		if acc != big.Exact {
			return nil, fmt.Errorf("a whole number is required, not %s", bf.Text('f', -1))
		}
		return i, nil
	case provider.Bool:
		return v.True(), nil
	case provider.StringList:
		out := []string{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() {
				return nil, fmt.Errorf("list elements must not be null")
			}
			out = append(out, e.AsString())
		}
		return out, nil
	case provider.StringMap:
		out := map[string]string{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() {
				return nil, fmt.Errorf("map elements must not be null")
			}
			out[k.AsString()] = e.AsString()
		}
		return out, nil
	}
	return v.AsString(), nil
}

// decodeJSON decodes a Dynamic value's JSON, whole numbers as int64 and
// others as float64 (what CBOR and JSON trips keep as they are).
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, err
	}
	return plainNumbers(x), nil
}

func plainNumbers(x any) any {
	switch v := x.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i, e := range v {
			v[i] = plainNumbers(e)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = plainNumbers(e)
		}
	}
	return x
}

// toCty converts a provider Go value of type t to cty.
func toCty(x any, t provider.Type) cty.Value {
	if x == nil {
		return cty.NullVal(ctyType(t))
	}
	switch t {
	case provider.Number:
		if n, ok := asInt(x); ok {
			return cty.NumberIntVal(n)
		}
	case provider.Bool:
		if b, ok := x.(bool); ok {
			return cty.BoolVal(b)
		}
	case provider.StringList:
		l := asList(x)
		if len(l) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		vals := make([]cty.Value, len(l))
		for i, s := range l {
			vals[i] = cty.StringVal(s)
		}
		return cty.ListVal(vals)
	case provider.StringMap:
		m := asMap(x)
		if len(m) == 0 {
			return cty.MapValEmpty(cty.String)
		}
		vals := make(map[string]cty.Value, len(m))
		for k, s := range m {
			vals[k] = cty.StringVal(s)
		}
		return cty.MapVal(vals)
	case provider.Dynamic, provider.Blocks:
		b, err := json.Marshal(normalizeJSON(x))
		if err != nil {
			return cty.DynamicVal
		}
		ty, err := ctyjson.ImpliedType(b)
		if err != nil {
			return cty.DynamicVal
		}
		v, err := ctyjson.Unmarshal(b, ty)
		if err != nil {
			return cty.DynamicVal
		}
		return v
	default:
		if s, ok := x.(string); ok {
			return cty.StringVal(s)
		}
	}
	return cty.NullVal(ctyType(t))
}

func asMap(x any) map[string]string {
	switch m := x.(type) {
	case map[string]string:
		return m
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, e := range m {
			s, _ := e.(string)
			out[k] = s
		}
		return out
	case map[any]any: // CBOR
		out := make(map[string]string, len(m))
		for k, e := range m {
			ks, _ := k.(string)
			s, _ := e.(string)
			out[ks] = s
		}
		return out
	}
	return nil
}

func asInt(x any) (int64, bool) {
	switch n := x.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint64:
		return int64(n), true
	case float64:
		return int64(n), float64(int64(n)) == n
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func asList(x any) []string {
	switch l := x.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// normalize returns x as the Go type of t (after a JSON or CBOR round
// trip numbers and lists come back as other types).
func normalize(x any, t provider.Type) any {
	if x == nil {
		return nil
	}
	switch t {
	case provider.Number:
		if n, ok := asInt(x); ok {
			return n
		}
	case provider.StringList:
		return asList(x)
	case provider.StringMap:
		return asMap(x)
	case provider.Dynamic, provider.Blocks:
		if b, err := json.Marshal(normalizeJSON(x)); err == nil {
			if v, err := decodeJSON(b); err == nil {
				return v
			}
		}
	}
	return x
}

// equal compares two provider values.
func equal(a, b any) bool {
	if d, ok := a.(digested); ok {
		return equalDigest(d, b)
	}
	if d, ok := b.(digested); ok {
		return equalDigest(d, a)
	}
	la, aok := listOf(a)
	lb, bok := listOf(b)
	if aok || bok {
		return slices.Equal(la, lb) && (la == nil) == (lb == nil) || len(la) == 0 && len(lb) == 0
	}
	if na, ok := asInt(a); ok {
		nb, ok := asInt(b)
		return ok && na == nb
	}
	switch a.(type) {
	case string, bool, nil:
		return a == b
	}
	// Maps, blocks, dynamic values: compared as JSON.
	ja, errA := json.Marshal(normalizeJSON(a))
	jb, errB := json.Marshal(normalizeJSON(b))
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// normalizeJSON makes a value encodable as JSON (CBOR decodes maps with
// keys of type any).
func normalizeJSON(x any) any {
	switch v := x.(type) {
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = normalizeJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalizeJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalizeJSON(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalizeJSON(e)
		}
		return out
	case json.Number:
		return plainNumbers(v)
	}
	return x
}

// listOf returns x as a []string when it is a list (a []any after a JSON
// or CBOR trip).
func listOf(x any) ([]string, bool) {
	switch l := x.(type) {
	case []string:
		return l, true
	case []any:
		for _, e := range l {
			if _, ok := e.(string); !ok {
				return nil, false
			}
		}
		return asList(x), true
	}
	return nil, false
}

func equalDigest(d digested, x any) bool {
	if e, ok := x.(digested); ok {
		return d == e
	}
	return x != nil && digest(x) == string(d)
}

// digest is how a sensitive value is kept in state and events: its
// SHA-256, never the value.
func digest(x any) string {
	if d, ok := x.(digested); ok {
		return string(d)
	}
	b, _ := json.Marshal(x)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// display renders a value as the plan shows it.
func display(x any) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case string:
		b, _ := json.Marshal(v)
		return string(b)
	case []string, []any, map[string]any, map[string]string, map[any]any, []map[string]any:
		b, _ := json.Marshal(normalizeJSON(v))
		return string(b)
	}
	return fmt.Sprint(x)
}

func convertCty(v cty.Value, ty cty.Type) (cty.Value, error) { return convert.Convert(v, ty) }

func ctyJSON(v cty.Value) ([]byte, error) { return ctyjson.Marshal(v, v.Type()) }
