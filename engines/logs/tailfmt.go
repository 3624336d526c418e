package logs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// lineFormat turns one line of a tailed file into a record, as in_tail's
// parsers do: none keeps the line as message, json reads an object,
// regexp:RE takes its named groups. A line the format does not parse is
// kept as {message} and counted (false).
type lineFormat struct {
	name string
	re   *regexp.Regexp
}

func parseLineFormat(s string) (lineFormat, error) {
	switch {
	case s == "" || s == "none":
		return lineFormat{name: "none"}, nil
	case s == "json":
		return lineFormat{name: "json"}, nil
	case strings.HasPrefix(s, "regexp:"):
		re, err := regexp.Compile(strings.TrimPrefix(s, "regexp:"))
		if err != nil {
			return lineFormat{}, fmt.Errorf("format=%s: %w", s, err)
		}
		if re.NumSubexp() == 0 || len(re.SubexpNames()) < 2 {
			return lineFormat{}, fmt.Errorf("format=%s: the regexp names no group ((?P<name>…))", s)
		}
		return lineFormat{name: s, re: re}, nil
	}
	return lineFormat{}, fmt.Errorf("format=%s: give none, json or regexp:'RE'", s)
}

func (f lineFormat) parse(line string) (map[string]any, bool) {
	switch f.name {
	case "json":
		var v any
		if err := json.Unmarshal([]byte(line), &v); err == nil {
			if m, ok := jsonNumbersFromFloat(v).(map[string]any); ok {
				return m, true
			}
		}
		return map[string]any{"message": line}, false
	case "none":
		return map[string]any{"message": line}, true
	}
	sub := f.re.FindStringSubmatch(line)
	if sub == nil {
		return map[string]any{"message": line}, false
	}
	m := map[string]any{}
	for i, name := range f.re.SubexpNames() {
		if name != "" && i < len(sub) {
			m[name] = sub[i]
		}
	}
	return m, true
}

// jsonNumbersFromFloat turns whole float64s into int64, as the journal
// keeps integers.
func jsonNumbersFromFloat(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbersFromFloat(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbersFromFloat(e)
		}
	case float64:
		if x == float64(int64(x)) && x < 1<<53 && x > -(1<<53) {
			return int64(x)
		}
	}
	return v
}
