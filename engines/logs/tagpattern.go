package logs

import (
	"fmt"
	"regexp"
	"strings"
)

// TagPattern is a Fluentd match pattern: `*` matches one part of a tag
// (between dots), `**` zero or more parts (`app.**` matches app, app.web
// and app.web.1), `{a,b}` either; several patterns separated by spaces
// match a tag any one matches.
type TagPattern struct {
	src string
	re  *regexp.Regexp
}

// ParseTagPattern compiles a Fluentd tag pattern.
func ParseTagPattern(s string) (*TagPattern, error) {
	var alts []string
	for _, p := range strings.Fields(s) {
		re, rest, err := tagRegexp(p, false)
		if err != nil {
			return nil, fmt.Errorf("tag pattern %q: %w", s, err)
		}
		if rest != "" {
			return nil, fmt.Errorf("tag pattern %q: unexpected %q", s, rest)
		}
		alts = append(alts, re)
	}
	if len(alts) == 0 {
		return nil, fmt.Errorf("empty tag pattern")
	}
	re, err := regexp.Compile("^(?:" + strings.Join(alts, "|") + ")$")
	if err != nil {
		return nil, fmt.Errorf("tag pattern %q: %w", s, err)
	}
	return &TagPattern{src: s, re: re}, nil
}

// Match reports whether tag matches.
func (p *TagPattern) Match(tag string) bool { return p.re.MatchString(tag) }

func (p *TagPattern) String() string { return p.src }

// tagRegexp translates p up to its end or, inside braces, up to the ','
// or '}' that ends the alternative, returning what is left.
func tagRegexp(p string, inBraces bool) (string, string, error) {
	var b strings.Builder
	for len(p) > 0 {
		switch {
		case strings.HasPrefix(p, ".**"):
			b.WriteString(`(?:\.[^.]+)*`)
			p = p[3:]
		case strings.HasPrefix(p, "**."):
			b.WriteString(`(?:[^.]+\.)*`)
			p = p[3:]
		case strings.HasPrefix(p, "**"):
			b.WriteString(`.*`)
			p = p[2:]
		case p[0] == '*':
			b.WriteString(`[^.]+`)
			p = p[1:]
		case p[0] == '{':
			p = p[1:]
			var alts []string
			for {
				re, rest, err := tagRegexp(p, true)
				if err != nil {
					return "", "", err
				}
				alts = append(alts, re)
				if rest == "" {
					return "", "", fmt.Errorf("{ without its }")
				}
				c := rest[0]
				p = rest[1:]
				if c == '}' {
					break
				}
			}
			b.WriteString("(?:" + strings.Join(alts, "|") + ")")
		case inBraces && (p[0] == ',' || p[0] == '}'):
			return b.String(), p, nil
		case p[0] == '}' || p[0] == ',':
			return "", "", fmt.Errorf("%c outside braces", p[0])
		default:
			b.WriteString(regexp.QuoteMeta(p[:1]))
			p = p[1:]
		}
	}
	return b.String(), "", nil
}
