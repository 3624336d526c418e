package packer

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Inputs are what a run gives a template: variable values (var.K=V and
// var-files, later ones winning), the caller's environment ({{env}},
// env()), and the time of the run ({{timestamp}}).
type Inputs struct {
	Vars     map[string]string
	VarFiles []string
	Env      map[string]string
	Now      time.Time
}

// jsonTemplate is the legacy JSON template.
type jsonTemplate struct {
	Description        string             `json:"description"`
	MinVersion         string             `json:"min_packer_version"`
	Variables          map[string]*string `json:"variables"`
	SensitiveVariables []string           `json:"sensitive-variables"`
	Builders           []map[string]any   `json:"builders"`
	Provisioners       []map[string]any   `json:"provisioners"`
	PostProcessors     []any              `json:"post-processors"`
}

// ParseJSON reads a legacy JSON template: its variables, then every
// string through Packer's template engine ({{user `x`}}, {{env `X`}},
// {{timestamp}}, {{isotime}}, {{build_name}}, {{build_type}},
// {{template_dir}}, {{pwd}}).
func ParseJSON(file string, src []byte, in Inputs) (*Template, error) {
	var jt jsonTemplate
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jt); err != nil {
		return nil, jsonError(file, src, err)
	}
	t := &Template{Path: file, Format: "json", Variables: map[string]string{}, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(src)), Sensitive: jt.SensitiveVariables}
	values := map[string]string{}
	for _, vf := range in.VarFiles {
		raw, err := os.ReadFile(vf)
		if err != nil {
			return nil, fmt.Errorf("var-file=%s: %w", vf, err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, jsonError(vf, raw, err)
		}
		maps.Copy(values, m)
	}
	maps.Copy(values, in.Vars)
	funcs := baseFuncs(file, in)
	for _, name := range slices.Sorted(maps.Keys(jt.Variables)) {
		def := jt.Variables[name]
		v, given := values[name]
		switch {
		case given:
		case def == nil:
			return nil, &Error{File: file, Msg: fmt.Sprintf("required variable %q has no value: give var.%s=VALUE", name, name)}
		default:
			s, err := render(*def, funcs, nil)
			if err != nil {
				return nil, &Error{File: file, Msg: fmt.Sprintf("variable %q: %v", name, err)}
			}
			v = s
		}
		t.Variables[name] = v
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if _, ok := jt.Variables[name]; !ok {
			t.Warnings = append(t.Warnings, fmt.Sprintf("a value was given for %q, which the template's variables do not declare", name))
		}
	}
	funcs["user"] = func(name string) (string, error) {
		v, ok := t.Variables[name]
		if !ok {
			return "", fmt.Errorf("no variable %q", name)
		}
		return v, nil
	}
	if len(jt.Builders) == 0 {
		return nil, &Error{File: file, Msg: "no builders: a template needs at least one"}
	}
	var provs []Provisioner
	for i, m := range jt.Provisioners {
		p, err := provisioner(m, funcs)
		if err != nil {
			return nil, &Error{File: file, Msg: fmt.Sprintf("provisioners[%d]: %v", i, err)}
		}
		provs = append(provs, p)
	}
	var chains [][]PostProcessor
	for i, raw := range jt.PostProcessors {
		var chain []any
		if l, ok := raw.([]any); ok {
			chain = l
		} else {
			chain = []any{raw}
		}
		var out []PostProcessor
		for j, x := range chain {
			m, ok := x.(map[string]any)
			if s, isStr := x.(string); isStr {
				m, ok = map[string]any{"type": s}, true
			}
			if !ok {
				return nil, &Error{File: file, Msg: fmt.Sprintf("post-processors[%d][%d]: a post-processor is a type name or an object", i, j)}
			}
			pp, err := postProcessor(m, funcs)
			if err != nil {
				return nil, &Error{File: file, Msg: fmt.Sprintf("post-processors[%d]: %v", i, err)}
			}
			out = append(out, pp)
		}
		chains = append(chains, out)
	}
	seen := map[string]bool{}
	for i, m := range jt.Builders {
		typ, _ := m["type"].(string)
		if typ == "" {
			return nil, &Error{File: file, Msg: fmt.Sprintf("builders[%d]: no type", i)}
		}
		name, _ := m["name"].(string)
		if name == "" {
			name = typ
		}
		if seen[name] {
			return nil, &Error{File: file, Msg: fmt.Sprintf("builders[%d]: a second builder named %q (give each a name)", i, name)}
		}
		seen[name] = true
		bf := maps.Clone(funcs)
		bf["build_name"] = func() string { return name }
		bf["build_type"] = func() string { return typ }
		b := Builder{Name: name, Type: typ, Provisioners: provs, PostProcessors: chains}
		if slices.Contains(Runnable, typ) {
			if err := builderFields(&b, m, bf); err != nil {
				return nil, &Error{File: file, Msg: fmt.Sprintf("builders[%d] (%s): %v", i, name, err)}
			}
		}
		t.Builders = append(t.Builders, b)
	}
	return t, nil
}

// jsonError places a JSON decoding error at its line and column.
func jsonError(file string, src []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return &Error{File: file, Msg: err.Error()}
	}
	line, col := 1, 1
	for _, c := range src[:max(0, min(int(off)-1, len(src)))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &Error{File: file, Line: line, Col: col, Msg: err.Error()}
}

func baseFuncs(file string, in Inputs) template.FuncMap {
	dir := filepath.Dir(file)
	return template.FuncMap{
		"env":          func(k string) string { return in.Env[k] },
		"timestamp":    func() string { return fmt.Sprint(in.Now.Unix()) },
		"isotime":      func(layout ...string) string { return isotime(in.Now, layout) },
		"template_dir": func() string { return dir },
		"pwd":          func() string { return dir },
		"upper":        strings.ToUpper,
		"lower":        strings.ToLower,
		"build_name":   func() string { return "" },
		"build_type":   func() string { return "" },
		"user":         func(string) string { return "" },
	}
}

func isotime(now time.Time, layout []string) string {
	if len(layout) > 0 {
		return now.UTC().Format(layout[0])
	}
	return now.UTC().Format(time.RFC3339)
}

// render runs s through Packer's template engine.
func render(s string, funcs template.FuncMap, data any) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	tm, err := template.New("").Funcs(funcs).Option("missingkey=error").Parse(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tm.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Render runs s (an execute_command, an output) through the template
// engine with data ({{.Path}}, {{.Vars}}, {{.BuildName}}…).
func Render(s string, data any) (string, error) {
	return render(s, template.FuncMap{}, data)
}

// fields reads a JSON object's values, rendered.
type fields struct {
	m     map[string]any
	funcs template.FuncMap
	used  map[string]bool
	err   error
}

func (f *fields) str(k string) string {
	f.used[k] = true
	v, ok := f.m[k]
	if !ok || f.err != nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.err = fmt.Errorf("%s: want a string", k)
		return ""
	}
	if f.funcs == nil { // HCL2: expressions were evaluated already
		return s
	}
	r, err := render(s, f.funcs, nil)
	if err != nil {
		f.err = fmt.Errorf("%s: %v", k, err)
	}
	return r
}

func (f *fields) raw(k string) string {
	f.used[k] = true
	s, _ := f.m[k].(string)
	return s
}

func (f *fields) strs(k string) []string {
	f.used[k] = true
	v, ok := f.m[k]
	if !ok || f.err != nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			l = []any{s}
		} else {
			f.err = fmt.Errorf("%s: want a list of strings", k)
			return nil
		}
	}
	var out []string
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			f.err = fmt.Errorf("%s: want a list of strings", k)
			return nil
		}
		if f.funcs == nil {
			out = append(out, s)
			continue
		}
		r, err := render(s, f.funcs, nil)
		if err != nil {
			f.err = fmt.Errorf("%s: %v", k, err)
			return nil
		}
		out = append(out, r)
	}
	return out
}

func (f *fields) boolean(k string) bool {
	f.used[k] = true
	switch v := f.m[k].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func (f *fields) unused() []string {
	var out []string
	for k := range f.m {
		if !f.used[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func newFields(m map[string]any, funcs template.FuncMap) *fields {
	return &fields{m: m, funcs: funcs, used: map[string]bool{"type": true, "name": true}}
}

func builderFields(b *Builder, m map[string]any, funcs template.FuncMap) error {
	f := newFields(m, funcs)
	b.Image = f.str("image")
	b.Commit = f.boolean("commit")
	b.Changes = f.strs("changes")
	b.ExportPath = f.str("export_path")
	if _, ok := m["run_command"]; ok {
		f.used["run_command"] = true
		b.RunCommand = []string{"(ignored)"}
	}
	b.Pull = f.boolean("pull")
	if f.err != nil {
		return f.err
	}
	if b.Image == "" {
		return errors.New("image: the base image is required")
	}
	if !b.Commit && b.ExportPath == "" {
		return errors.New("commit or export_path: one is required, as with Packer's docker builder")
	}
	if len(b.RunCommand) > 0 {
		b.Ignored = append(b.Ignored, "run_command")
	}
	b.Ignored = append(b.Ignored, f.unused()...)
	return nil
}

func provisioner(m map[string]any, funcs template.FuncMap) (Provisioner, error) {
	f := newFields(m, funcs)
	p := Provisioner{Type: f.str("type")}
	p.Only, p.Except = f.strs("only"), f.strs("except")
	switch p.Type {
	case "shell", "shell-local":
		p.Inline = f.strs("inline")
		p.InlineShebang = f.str("inline_shebang")
		p.Script = f.str("script")
		p.Scripts = f.strs("scripts")
		p.EnvVars = f.strs("environment_vars")
		p.ExecuteCommand = f.raw("execute_command")
		p.Command = f.str("command")
	case "file":
		p.Source = f.str("source")
		p.Sources = f.strs("sources")
		p.Destination = f.str("destination")
		p.Direction = f.str("direction")
	default:
		return p, fmt.Errorf("provisioner type %q is not available here (shell, file, shell-local are)", p.Type)
	}
	if f.err != nil {
		return p, f.err
	}
	if u := f.unused(); len(u) > 0 {
		return p, fmt.Errorf("%s provisioner: unknown field(s) %s", p.Type, strings.Join(u, ", "))
	}
	return p, checkProvisioner(p)
}

func checkProvisioner(p Provisioner) error {
	switch p.Type {
	case "shell", "shell-local":
		n := 0
		for _, set := range []bool{len(p.Inline) > 0, p.Script != "", len(p.Scripts) > 0, p.Command != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s provisioner: give exactly one of inline, script, scripts%s", p.Type, map[bool]string{true: ", command"}[p.Type == "shell-local"])
		}
	case "file":
		if (p.Source == "" && len(p.Sources) == 0) || p.Destination == "" {
			return errors.New("file provisioner: source (or sources) and destination are required")
		}
		if p.Direction != "" && p.Direction != "upload" && p.Direction != "download" {
			return fmt.Errorf("file provisioner: direction is upload or download, not %q", p.Direction)
		}
	}
	return nil
}

func postProcessor(m map[string]any, funcs template.FuncMap) (PostProcessor, error) {
	f := newFields(m, funcs)
	p := PostProcessor{Type: f.str("type")}
	p.Only, p.Except = f.strs("only"), f.strs("except")
	p.KeepInputArtifact = f.boolean("keep_input_artifact")
	switch p.Type {
	case "manifest":
		p.Output = f.raw("output")
		p.StripPath = f.boolean("strip_path")
	case "checksum":
		p.Output = f.raw("output")
		p.ChecksumTypes = f.strs("checksum_types")
	case "compress":
		p.Output = f.raw("output")
	case "docker-tag":
		p.Repository = f.str("repository")
		p.Tags = append(f.strs("tags"), f.strs("tag")...)
	case "shell-local":
		p.Inline = f.strs("inline")
		p.Command = f.str("command")
	default:
		return p, fmt.Errorf("post-processor type %q is not available here (manifest, checksum, compress, docker-tag, shell-local are)", p.Type)
	}
	if f.err != nil {
		return p, f.err
	}
	if u := f.unused(); len(u) > 0 {
		return p, fmt.Errorf("%s post-processor: unknown field(s) %s", p.Type, strings.Join(u, ", "))
	}
	return p, checkPostProcessor(p)
}

func checkPostProcessor(p PostProcessor) error {
	if p.Type == "docker-tag" && p.Repository == "" {
		return errors.New("docker-tag post-processor: repository is required")
	}
	for _, c := range p.ChecksumTypes {
		if !slices.Contains([]string{"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}, c) {
			return fmt.Errorf("checksum post-processor: checksum type %q is not one of md5, sha1, sha224, sha256, sha384, sha512", c)
		}
	}
	if p.Type == "shell-local" && len(p.Inline) == 0 && p.Command == "" {
		return errors.New("shell-local post-processor: give inline or command")
	}
	return nil
}
