package scripts

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// FormatBytes renders a byte count as sysdig's chisels do: 1.50M, 2.00KB,
// 512B.
func FormatBytes(v float64) string {
	const k = 1024.0
	switch {
	case v > k*k*k*k*k:
		return fmt.Sprintf("%.2fP", v/(k*k*k*k*k))
	case v > k*k*k*k:
		return fmt.Sprintf("%.2fT", v/(k*k*k*k))
	case v > k*k*k:
		return fmt.Sprintf("%.2fG", v/(k*k*k))
	case v > k*k:
		return fmt.Sprintf("%.2fM", v/(k*k))
	case v > k:
		return fmt.Sprintf("%.2fKB", v/k)
	}
	return fmt.Sprintf("%dB", int64(v))
}

// FormatInterval renders a duration in ns as sysdig's
// format_time_interval does: 1.10s, 15ms, 2.50ms, 20us, 1.50us, 800ns.
func FormatInterval(ns int64) string {
	const s, ms, us = int64(time.Second), int64(time.Millisecond), int64(time.Microsecond)
	switch {
	case ns >= s:
		return fmt.Sprintf("%d.%02ds", ns/s, ns%s/(10*ms))
	case ns >= s/100:
		return fmt.Sprintf("%dms", ns/ms)
	case ns >= ms:
		return fmt.Sprintf("%d.%02dms", ns/ms, ns%ms/(10*us))
	case ns >= 10*us:
		return fmt.Sprintf("%dus", ns/us)
	case ns >= us:
		return fmt.Sprintf("%d.%02dus", ns/us, ns%us/10)
	}
	return fmt.Sprintf("%dns", ns)
}

// FormatTime renders ns since the epoch in UTC, RFC 3339 with nine digits.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}

type topEntry struct {
	key   lua.LValue
	value lua.LNumber
	ks    string
}

// topEntries returns the n entries of tbl with the largest numeric values
// (all when n <= 0), largest first, ties by key; other values are skipped.
func topEntries(tbl *lua.LTable, n int) []topEntry {
	var es []topEntry
	tbl.ForEach(func(k, v lua.LValue) {
		if num, ok := v.(lua.LNumber); ok {
			es = append(es, topEntry{key: k, value: num, ks: k.String()})
		}
	})
	slices.SortFunc(es, func(a, b topEntry) int {
		if a.value != b.value {
			if a.value > b.value {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ks, b.ks)
	})
	if n > 0 && len(es) > n {
		es = es[:n]
	}
	return es
}

// toLua converts a field's value (filter.FieldGetter.Get) to Lua.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case uint64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	case []byte:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case map[any]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSet(toLua(L, k), toLua(L, e))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

const maxJSONDepth = 64

// fromLua converts a Lua value to what encoding/json encodes: a table
// whose keys are exactly 1..n is an array, any other an object with its
// keys as strings.
func fromLua(v lua.LValue, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("value nested too deeply (a table that contains itself?)")
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return v.String(), nil
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case lua.LString:
		return string(v), nil
	case *lua.LTable:
		n, count := v.MaxN(), 0
		v.ForEach(func(lua.LValue, lua.LValue) { count++ })
		if n > 0 && n == count {
			out := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				e, err := fromLua(v.RawGetInt(i), depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, e)
			}
			return out, nil
		}
		out := make(map[string]any, count)
		var err error
		v.ForEach(func(k, e lua.LValue) {
			if err != nil {
				return
			}
			var ev any
			if ev, err = fromLua(e, depth+1); err == nil {
				out[k.String()] = ev
			}
		})
		return out, err
	}
	return nil, fmt.Errorf("cannot encode a %s", v.Type())
}
