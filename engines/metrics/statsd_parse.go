package metrics

import (
	"fmt"
	"strconv"
	"strings"
)

// This file parses DogStatsD datagrams (Datadog's StatsD with tags,
// events and service checks); statsd.go listens and aggregates. The
// format, one message a line:
//
//	metric.name:VALUE[:VALUE…]|TYPE[|@RATE][|#tag:v,tag2][|T<unix>][|c:<container>]
//	_e{TITLE_LEN,TEXT_LEN}:TITLE|TEXT[|d:<unix>][|h:HOST][|p:PRIORITY][|t:ALERT_TYPE][|#tags]
//	_sc|NAME|STATUS[|d:<unix>][|h:HOST][|#tags][|m:MESSAGE]

// StatsdMetric is one metric message.
type StatsdMetric struct {
	Name   string
	Type   string // c, g, ms, h, d, s
	Values []float64
	Set    []string // the members a set message adds (Type s)
	Rate   float64  // the sample rate, 1 when not given
	Tags   []StatsdTag
	// GaugeDelta says a gauge value had a sign: it adds to the gauge, as
	// StatsD's "+3" / "-3".
	GaugeDelta bool
}

// StatsdTag is one tag: key:value, or a bare key (Value "").
type StatsdTag struct{ Key, Value string }

// StatsdEvent is an _e message.
type StatsdEvent struct {
	Title, Text, Host, Priority, AlertType, AggregationKey, SourceType string
	Timestamp                                                          int64
	Tags                                                               []StatsdTag
}

// StatsdServiceCheck is an _sc message. Status is 0 OK, 1 WARNING,
// 2 CRITICAL, 3 UNKNOWN.
type StatsdServiceCheck struct {
	Name, Host, Message string
	Status              int
	Timestamp           int64
	Tags                []StatsdTag
}

// ParseStatsdLine parses one line: exactly one of the three results is
// non-nil when err is nil.
func ParseStatsdLine(line string) (*StatsdMetric, *StatsdEvent, *StatsdServiceCheck, error) {
	switch {
	case strings.HasPrefix(line, "_e{"):
		e, err := parseStatsdEvent(line)
		return nil, e, nil, err
	case strings.HasPrefix(line, "_sc|"):
		sc, err := parseStatsdServiceCheck(line)
		return nil, nil, sc, err
	}
	m, err := parseStatsdMetric(line)
	return m, nil, nil, err
}

func parseStatsdMetric(line string) (*StatsdMetric, error) {
	name, rest, ok := strings.Cut(line, ":")
	if !ok || name == "" {
		return nil, fmt.Errorf("%q: want NAME:VALUE|TYPE", line)
	}
	parts := strings.Split(rest, "|")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q: no |TYPE", line)
	}
	m := &StatsdMetric{Name: name, Type: parts[1], Rate: 1}
	switch m.Type {
	case "c", "g", "ms", "h", "d", "s":
	default:
		return nil, fmt.Errorf("%q: unknown type %q (c, g, ms, h, d or s)", line, m.Type)
	}
	for _, p := range parts[2:] {
		switch {
		case strings.HasPrefix(p, "@"):
			r, err := strconv.ParseFloat(p[1:], 64)
			if err != nil || r <= 0 || r > 1 {
				return nil, fmt.Errorf("%q: sample rate %q: want a number in (0, 1]", line, p)
			}
			m.Rate = r
		case strings.HasPrefix(p, "#"):
			m.Tags = parseStatsdTags(p[1:])
		case strings.HasPrefix(p, "c:"), strings.HasPrefix(p, "T"), strings.HasPrefix(p, "e:"):
			// container id, timestamp, external data: not used
		case p == "":
		default:
			return nil, fmt.Errorf("%q: unknown field %q", line, p)
		}
	}
	if m.Type == "s" {
		m.Set = []string{parts[0]}
		return m, nil
	}
	// DogStatsD v1.1 packs several values: 1:2:3|h.
	for _, v := range strings.Split(parts[0], ":") {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: value %q is not a number", line, v)
		}
		if m.Type == "g" && (strings.HasPrefix(v, "+") || strings.HasPrefix(v, "-")) {
			m.GaugeDelta = true
		}
		m.Values = append(m.Values, f)
	}
	return m, nil
}

func parseStatsdTags(s string) []StatsdTag {
	var tags []StatsdTag
	for _, t := range strings.Split(s, ",") {
		if t == "" {
			continue
		}
		k, v, _ := strings.Cut(t, ":")
		tags = append(tags, StatsdTag{Key: k, Value: v})
	}
	return tags
}

func parseStatsdEvent(line string) (*StatsdEvent, error) {
	head, body, ok := strings.Cut(line[3:], "}:")
	if !ok {
		return nil, fmt.Errorf("%q: want _e{TITLE_LEN,TEXT_LEN}:TITLE|TEXT", line)
	}
	tl, xl, ok := strings.Cut(head, ",")
	titleLen, err1 := strconv.Atoi(tl)
	textLen, err2 := strconv.Atoi(xl)
	if !ok || err1 != nil || err2 != nil || titleLen < 0 || textLen < 0 {
		return nil, fmt.Errorf("%q: lengths %q: want two numbers", line, head)
	}
	if len(body) < titleLen+1+textLen || body[titleLen] != '|' {
		return nil, fmt.Errorf("%q: title and text do not have the lengths given (%d, %d)", line, titleLen, textLen)
	}
	e := &StatsdEvent{Title: body[:titleLen], Text: strings.ReplaceAll(body[titleLen+1:titleLen+1+textLen], `\n`, "\n"), Priority: "normal", AlertType: "info"}
	rest := body[titleLen+1+textLen:]
	for _, p := range strings.Split(rest, "|") {
		switch {
		case p == "":
		case strings.HasPrefix(p, "d:"):
			e.Timestamp, _ = strconv.ParseInt(p[2:], 10, 64)
		case strings.HasPrefix(p, "h:"):
			e.Host = p[2:]
		case strings.HasPrefix(p, "p:"):
			e.Priority = p[2:]
		case strings.HasPrefix(p, "t:"):
			e.AlertType = p[2:]
		case strings.HasPrefix(p, "k:"):
			e.AggregationKey = p[2:]
		case strings.HasPrefix(p, "s:"):
			e.SourceType = p[2:]
		case strings.HasPrefix(p, "#"):
			e.Tags = parseStatsdTags(p[1:])
		default:
			return nil, fmt.Errorf("%q: unknown event field %q", line, p)
		}
	}
	return e, nil
}

func parseStatsdServiceCheck(line string) (*StatsdServiceCheck, error) {
	parts := strings.Split(line, "|")
	if len(parts) < 3 || parts[1] == "" {
		return nil, fmt.Errorf("%q: want _sc|NAME|STATUS", line)
	}
	st, err := strconv.Atoi(parts[2])
	if err != nil || st < 0 || st > 3 {
		return nil, fmt.Errorf("%q: status %q: want 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN)", line, parts[2])
	}
	sc := &StatsdServiceCheck{Name: parts[1], Status: st}
	for i, p := range parts[3:] {
		switch {
		case strings.HasPrefix(p, "d:"):
			sc.Timestamp, _ = strconv.ParseInt(p[2:], 10, 64)
		case strings.HasPrefix(p, "h:"):
			sc.Host = p[2:]
		case strings.HasPrefix(p, "#"):
			sc.Tags = parseStatsdTags(p[1:])
		case strings.HasPrefix(p, "m:"):
			// The message is last and may hold "|".
			sc.Message = strings.Join(append([]string{p[2:]}, parts[3+i+1:]...), "|")
			return sc, nil
		case p == "":
		default:
			return nil, fmt.Errorf("%q: unknown service check field %q", line, p)
		}
	}
	return sc, nil
}

// statusName is a service check status as Datadog names it.
func statusName(s int) string {
	return [...]string{"ok", "warning", "critical", "unknown"}[s]
}

// promName turns a StatsD name into a Prometheus one, as statsd_exporter
// does: characters outside [a-zA-Z0-9_:] become _, and a leading digit
// gets a _ before it.
func promName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == ':':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// labelName is promName without colons (a label name may not have one).
func labelName(s string) string {
	return strings.ReplaceAll(promName(s), ":", "_")
}
