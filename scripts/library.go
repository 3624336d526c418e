// Package scripts runs Lua chisels over events: sysdig's chisel API
// (globals, callbacks, chisel.*, evt.*) on gopher-lua, with CEL field names
// and filters, a sandbox, and a time and memory bound on every run.
package scripts

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/cairnhq/cairn/dsl"
)

//go:embed chisels/*.lua
var builtins embed.FS

// Defaults of Options.
const (
	DefaultCallbackCPU = 5 * time.Second
	DefaultMemoryLimit = 256 << 20
)

// Options configure where chisels come from and how runs are bounded.
type Options struct {
	// Paths are searched after the built-ins, in order: the daemon passes
	// /etc/cairn/chisels, then its --chisel-path directories. A directory
	// that does not exist is skipped.
	Paths []string
	// AllowUnsafe opens Lua's full libraries (--allow-unsafe-scripts),
	// except os.exit.
	AllowUnsafe bool
	// CallbackCPU bounds each callback; it is measured as wall time on the
	// chisel's goroutine (default 5s).
	CallbackCPU time.Duration
	// MemoryLimit bounds the estimated size of what a run's Lua states hold
	// (default 256 MiB).
	MemoryLimit int64
}

// Library finds chisels: the built-ins, then the files of Options.Paths. It
// reads files afresh on every call, so an edited chisel needs no restart.
type Library struct {
	opts Options
}

// NewLibrary returns a library with opts, defaults filled in.
func NewLibrary(opts Options) *Library {
	if opts.CallbackCPU <= 0 {
		opts.CallbackCPU = DefaultCallbackCPU
	}
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	opts.Paths = slices.Clone(opts.Paths)
	return &Library{opts: opts}
}

// Arg is one declared argument of a chisel (an entry of its `args` global).
type Arg struct {
	Name, Description, Type string
	Optional                bool
}

// Info describes a chisel as its globals declare it.
type Info struct {
	Name             string
	Category         string
	ShortDescription string
	Description      string
	Stream           string // the declared default stream, or ""
	Args             []Arg
	Source           string // "builtin", or the file the chisel was read from
	// Error is set, by List only, for a chisel that cannot be loaded (a
	// syntax error, an error at top level): the other fields but Name and
	// Source are then empty. Load and Info return such errors instead.
	Error string
}

// Usage returns the argument synopsis: "keys value [filter]".
func (i Info) Usage() string {
	var b strings.Builder
	for n, a := range i.Args {
		if n > 0 {
			b.WriteByte(' ')
		}
		if a.Optional {
			b.WriteString("[" + a.Name + "]")
		} else {
			b.WriteString(a.Name)
		}
	}
	return b.String()
}

// source is where one chisel or module is read from.
type source struct {
	name string // without .lua
	path string // in builtins (chisels/x.lua) or on disk
	dir  string // "" for a built-in
}

func (s source) builtin() bool { return s.dir == "" }

// chunkName is what Lua error messages call the file: name.lua for a
// built-in, the path for a file.
func (s source) chunkName() string {
	if s.builtin() {
		return s.name + ".lua"
	}
	return s.path
}

func (s source) origin() string {
	if s.builtin() {
		return "builtin"
	}
	return s.path
}

func (s source) read() (string, error) {
	var b []byte
	var err error
	if s.builtin() {
		b, err = builtins.ReadFile(s.path)
	} else {
		b, err = os.ReadFile(s.path)
	}
	if err != nil {
		return "", fmt.Errorf("read chisel %s: %w", s.name, err)
	}
	return string(b), nil
}

// sources lists every .lua file of the library, the first of each name
// winning: built-ins, then Paths in order. Directories that do not exist
// are skipped; others that cannot be read are reported in err alongside
// what could be read.
func (l *Library) sources() ([]source, error) {
	var out []source
	seen := map[string]bool{}
	add := func(s source) {
		if !seen[s.name] {
			seen[s.name] = true
			out = append(out, s)
		}
	}
	entries, err := builtins.ReadDir("chisels")
	if err != nil {
		return nil, fmt.Errorf("read built-in chisels: %w", err)
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".lua"); ok {
			add(source{name: name, path: "chisels/" + e.Name()})
		}
	}
	var errs []error
	for _, dir := range l.opts.Paths {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read chisel directory: %w", err))
			continue
		}
		for _, e := range entries {
			if name, ok := strings.CutSuffix(e.Name(), ".lua"); ok && !e.IsDir() {
				add(source{name: name, path: filepath.Join(dir, e.Name()), dir: dir})
			}
		}
	}
	return out, errors.Join(errs...)
}

// find returns the source of name, or an error naming the nearest chisel.
func (l *Library) find(name string) (source, error) {
	if !validModule(name) {
		return source{}, fmt.Errorf("chisel name %q: use letters, digits and _ only (a local file is sent with its path, such as ./%s.lua)", name, name)
	}
	// A direct look-up first, so a broken directory elsewhere does not
	// hide a chisel that exists.
	if _, err := fs.Stat(builtins, "chisels/"+name+".lua"); err == nil {
		return source{name: name, path: "chisels/" + name + ".lua"}, nil
	}
	for _, dir := range l.opts.Paths {
		p := filepath.Join(dir, name+".lua")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return source{name: name, path: p, dir: dir}, nil
		}
	}
	srcs, _ := l.sources()
	var names []string
	for _, s := range srcs {
		names = append(names, s.name)
	}
	msg := fmt.Sprintf("no chisel named %q", name)
	if c := dsl.Nearest(name, names); c != "" {
		return source{}, fmt.Errorf("%s; did you mean %s?", msg, c)
	}
	return source{}, fmt.Errorf("%s; chisel list shows the chisels there are", msg)
}

// validModule reports whether name can name a chisel or a module:
// words of [A-Za-z0-9_] joined by dots (a module a.b is a/b.lua).
func validModule(name string) bool {
	if name == "" {
		return false
	}
	for _, w := range strings.Split(name, ".") {
		if w == "" {
			return false
		}
		for _, c := range w {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// findModule returns the source of a module for require by a chisel of
// directory dir: dir's own first (sysdig's chisels require the
// common.lua beside them), then built-ins, then Paths.
func (l *Library) findModule(name, dir string) (source, bool) {
	if !validModule(name) {
		return source{}, false
	}
	rel := strings.ReplaceAll(name, ".", "/") + ".lua"
	if dir != "" {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return source{name: name, path: p, dir: dir}, true
		}
	}
	if _, err := fs.Stat(builtins, "chisels/"+rel); err == nil {
		return source{name: name, path: "chisels/" + rel}, true
	}
	for _, dir := range l.opts.Paths {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return source{name: name, path: p, dir: dir}, true
		}
	}
	return source{}, false
}

// List describes every chisel of the library, sorted by name. Modules (files
// that define neither a description nor a callback, such as common.lua) are
// left out. A chisel that cannot be loaded is listed with its Error, so a
// broken file shows up rather than vanishing. List returns what it could
// read even when it also returns an error (a directory it cannot read).
func (l *Library) List() ([]Info, error) {
	srcs, err := l.sources()
	var out []Info
	for _, s := range srcs {
		c, lerr := l.load(s)
		switch {
		case errors.Is(lerr, errModule):
			continue
		case lerr != nil:
			out = append(out, Info{Name: s.name, Source: s.origin(), Error: lerr.Error()})
		default:
			out = append(out, c.info)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Info describes the chisel name; an unknown name is an error suggesting
// the nearest.
func (l *Library) Info(name string) (Info, error) {
	c, err := l.Load(name)
	if err != nil {
		return Info{}, err
	}
	return c.info, nil
}

// Load returns the chisel name from the library, compiled and described,
// ready to run.
func (l *Library) Load(name string) (*Chisel, error) {
	s, err := l.find(name)
	if err != nil {
		return nil, err
	}
	return l.load(s)
}

// LoadSource returns a chisel from source text a client sent; name is the
// client's path (./my.lua), used in messages and for the chisel's name.
// It can require modules and chisel.exec chisels of the library.
func (l *Library) LoadSource(name, src string) (*Chisel, error) {
	base := strings.TrimSuffix(filepath.Base(name), ".lua")
	return l.compile(base, name, name, src)
}

var errModule = errors.New("is a module, not a chisel: it defines no description and no callback")

func (l *Library) load(s source) (*Chisel, error) {
	src, err := s.read()
	if err != nil {
		return nil, err
	}
	c, err := l.compile(s.name, s.chunkName(), s.origin(), src)
	if c != nil {
		c.dir = s.dir
	}
	return c, err
}

// loadFrom is Load for chisel.exec from a chisel of directory dir: dir's
// own NAME.lua first, as sysdig finds table_generator.lua beside the
// chisel that execs it, then the library's.
func (l *Library) loadFrom(name, dir string) (*Chisel, error) {
	if dir != "" && validModule(name) {
		p := filepath.Join(dir, name+".lua")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return l.load(source{name: name, path: p, dir: dir})
		}
	}
	return l.Load(name)
}

// compile parses src and runs its top level once, in a sandbox, to read the
// globals that describe it.
func (l *Library) compile(name, chunk, origin, src string) (*Chisel, error) {
	proto, err := compileLua(chunk, src)
	if err != nil {
		return nil, &ScriptError{Chisel: name, Msg: err.Error()} // a syntax error: no callback ran
	}
	c := &Chisel{lib: l, name: name, chunk: chunk, proto: proto}
	info, err := c.describe()
	if err != nil {
		return nil, err
	}
	info.Name, info.Source = name, origin
	c.info = info
	return c, nil
}

// compileLua parses and compiles a chunk; a syntax error reads
// "chunk:line:col: message near 'token'".
func compileLua(chunk, src string) (*lua.FunctionProto, error) {
	stmts, err := parse.Parse(strings.NewReader(src), chunk)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			if pe.Pos.Line == parse.EOF {
				return nil, fmt.Errorf("%s: at the end of the file: %s", chunk, pe.Message)
			}
			return nil, fmt.Errorf("%s:%d:%d: %s near '%s'", chunk, pe.Pos.Line, pe.Pos.Column, pe.Message, pe.Token)
		}
		return nil, fmt.Errorf("%s: %w", chunk, err)
	}
	proto, err := lua.Compile(stmts, chunk)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chunk, err)
	}
	return proto, nil
}
