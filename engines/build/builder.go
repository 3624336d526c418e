package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cairnhq/cairn/engines/runtime/image"
	"github.com/cairnhq/cairn/engines/runtime/oci"
)

// Options are what a build was asked.
type Options struct {
	Context    string // the context directory, absolute
	Dockerfile string // the Dockerfile's path, absolute
	Tags       []string
	Target     string
	Args       map[string]string // build-arg.K=V
	Labels     map[string]string // label.K=V, set on the final image
	NoCache    bool
	Network    string // none (default) or host
}

// Step is one executed instruction, as build.step records it.
type Step struct {
	N           int           `json:"step"`
	Stage       string        `json:"stage"`
	Instruction string        `json:"instruction"`
	Cached      bool          `json:"cached"`
	Layer       string        `json:"layer,omitempty"`
	Size        int64         `json:"size,omitempty"`
	Duration    time.Duration `json:"duration"`
	ExitCode    int           `json:"exit_code"`
}

// StepError is a build that failed at a step: which, and for a RUN its
// exit code and the last lines of its output.
type StepError struct {
	Step        int
	Instruction string
	ExitCode    int
	Tail        []string
	Err         error
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("step %d (%s): ", e.Step, e.Instruction)
	if e.Err != nil {
		s += e.Err.Error()
	} else {
		s += fmt.Sprintf("the command exited with code %d", e.ExitCode)
	}
	if len(e.Tail) > 0 {
		s += "; its last lines:\n  " + strings.Join(e.Tail, "\n  ")
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// UsageError is a build refused before it starts (bad input): the CLI
// exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// builder runs one build.
type builder struct {
	id      string
	opt     Options
	df      *Dockerfile
	store   *image.Store
	runc    runner
	work    string // this build's scratch directory
	cache   string // the layer cache's directory (key -> manifest digest)
	mounts  string // --mount=type=cache directories
	epoch   time.Time
	out     func(string)
	onStep  func(Step)
	ctxSrc  *source
	lex     *shell.Lex
	total   int
	n       int
	stages  map[int]*stage
	used    map[string]bool // build args an ARG declared
	steps   []Step
	tail    []string
	current string // the step's container id, for cancel
}

// stage is a stage being built: its image so far.
type stage struct {
	name   string
	img    v1.Image // stored (BlobImage) or the empty base
	cfg    *v1.ConfigFile
	digest string // manifest digest of img, "" for scratch
	args   []arg  // ARGs in effect, in order
}

type arg struct{ name, value string }

func (st *stage) env() []string {
	env := slices.Clone(st.cfg.Config.Env)
	for _, a := range st.args {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, a.name+"=") }) {
			env = append(env, a.name+"="+a.value)
		}
	}
	return env
}

// expander expands words with the stage's ENV and ARGs as Docker does.
func (b *builder) expander(st *stage) instructions.SingleWordExpander {
	env := shell.EnvsFromSlice(st.env())
	return func(word string) (string, error) {
		s, _, err := b.lex.ProcessWord(word, env)
		return s, err
	}
}

func emptyBase() v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// plan picks the stages the target needs, in Dockerfile order, and counts
// their steps.
func (b *builder) plan() ([]int, error) {
	target := len(b.df.Stages) - 1
	if b.opt.Target != "" {
		i, ok := instructions.HasStage(b.df.Stages, b.opt.Target)
		if !ok {
			var names []string
			for _, s := range b.df.Stages {
				if s.Name != "" {
					names = append(names, s.Name)
				}
			}
			return nil, usagef("target=%s: no stage of that name (the stages: %s)", b.opt.Target, strings.Join(names, ", "))
		}
		target = i
	}
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		s := b.df.Stages[i]
		if j, ok := b.stageRef(s.BaseName, i); ok {
			visit(j)
		}
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				if j, ok := b.stageRef(cp.From, i); ok {
					visit(j)
				}
			}
		}
	}
	visit(target)
	var order []int
	for i := range b.df.Stages {
		if need[i] {
			order = append(order, i)
			b.total += 1 + len(b.df.Stages[i].Commands)
		}
	}
	return order, nil
}

// stageRef finds a stage named (or numbered) ref before stage i.
func (b *builder) stageRef(ref string, before int) (int, bool) {
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n, true
	}
	if j, ok := instructions.HasStage(b.df.Stages[:before], ref); ok {
		return j, true
	}
	return 0, false
}

// metaEnv is the ARGs before the first FROM, with the build args given.
func (b *builder) metaArgs() ([]arg, error) {
	var out []arg
	for _, c := range b.df.MetaArgs {
		for _, a := range c.Args {
			v, given := b.opt.Args[a.Key]
			if given {
				b.used[a.Key] = true
			} else if a.Value != nil {
				env := shell.EnvsFromSlice(argEnv(out))
				s, _, err := b.lex.ProcessWord(*a.Value, env)
				if err != nil {
					return nil, b.syntax(c.Location(), err)
				}
				v = s
			}
			out = setArg(out, a.Key, v)
		}
	}
	return out, nil
}

func argEnv(args []arg) []string {
	var env []string
	for _, a := range args {
		env = append(env, a.name+"="+a.value)
	}
	return env
}

func setArg(args []arg, name, value string) []arg {
	for i := range args {
		if args[i].name == name {
			args[i].value = value
			return args
		}
	}
	return append(args, arg{name, value})
}

func (b *builder) syntax(loc []parser.Range, err error) error {
	line, col := 1, 1
	if len(loc) > 0 {
		line, col = loc[0].Start.Line, loc[0].Start.Character+1
	}
	e := &SyntaxError{File: b.df.Name, Line: line, Col: col, Msg: err.Error()}
	if line-1 < len(b.df.lines) {
		e.Instruction = strings.TrimSpace(b.df.lines[line-1])
	}
	return &UsageError{e}
}

// Run builds the target and answers the final image (stored, tagged by
// the caller).
func (b *builder) Run(ctx context.Context) (v1.Image, error) {
	b.lex = shell.NewLex(b.df.Escape)
	b.stages = map[int]*stage{}
	b.used = map[string]bool{}
	order, err := b.plan()
	if err != nil {
		return nil, err
	}
	meta, err := b.metaArgs()
	if err != nil {
		return nil, err
	}
	var last *stage
	for _, i := range order {
		st, err := b.runStage(ctx, i, meta)
		if err != nil {
			return nil, err
		}
		b.stages[i] = st
		last = st
	}
	for k := range b.opt.Args {
		if !b.used[k] && k != "SOURCE_DATE_EPOCH" {
			b.out(fmt.Sprintf("[Warning] One or more build-args [%s] were not consumed", k))
		}
	}
	if len(b.opt.Labels) > 0 {
		cfg := last.cfg.DeepCopy()
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		for k, v := range b.opt.Labels {
			cfg.Config.Labels[k] = v
		}
		img, err := mutate.ConfigFile(last.img, cfg)
		if err != nil {
			return nil, err
		}
		return img, nil
	}
	return last.img, nil
}

func (b *builder) runStage(ctx context.Context, i int, meta []arg) (*stage, error) {
	s := b.df.Stages[i]
	b.n++
	metaEnv := shell.EnvsFromSlice(argEnv(meta))
	base, _, err := b.lex.ProcessWord(s.BaseName, metaEnv)
	if err != nil {
		return nil, b.syntax(s.Location, err)
	}
	b.out(fmt.Sprintf("STEP %d/%d: %s", b.n, b.total, s.SourceCode))
	st := &stage{name: s.Name}
	if st.name == "" {
		st.name = strconv.Itoa(i)
	}
	switch {
	case base == "scratch":
		st.img = emptyBase()
		st.cfg = &v1.ConfigFile{Architecture: runtime.GOARCH, OS: "linux", RootFS: v1.RootFS{Type: "layers"}}
	default:
		if j, ok := b.stageRef(base, i); ok {
			from := b.stages[j]
			st.img, st.digest = from.img, from.digest
			st.cfg = from.cfg.DeepCopy()
			break
		}
		_, img, err := b.store.Image(base)
		if err != nil {
			return nil, &StepError{Step: b.n, Instruction: "FROM " + base, Err: fmt.Errorf("%w (import it with image import, or build it first)", err)}
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		st.img, st.digest, st.cfg = img, d.String(), cfg.DeepCopy()
	}
	st.cfg.Created = v1.Time{Time: b.epoch}
	st.cfg.Container = ""
	b.steps = append(b.steps, Step{N: b.n, Stage: st.name, Instruction: "FROM " + base, Cached: true})
	cmds := s.Commands
	// ONBUILD triggers of the base run first, as Docker runs them, and are
	// not inherited.
	if triggers := st.cfg.Config.OnBuild; len(triggers) > 0 {
		st.cfg.Config.OnBuild = nil
		var pre []instructions.Command
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil || len(res.AST.Children) != 1 {
				return nil, &StepError{Step: b.n, Instruction: "ONBUILD " + t, Err: fmt.Errorf("the base image's ONBUILD trigger does not parse: %v", err)}
			}
			c, err := instructions.ParseCommand(res.AST.Children[0])
			if err != nil {
				return nil, &StepError{Step: b.n, Instruction: "ONBUILD " + t, Err: err}
			}
			pre = append(pre, c)
		}
		b.total += len(pre)
		cmds = append(pre, cmds...)
	}
	for _, c := range cmds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.n++
		if err := b.step(ctx, st, c, meta); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// step runs one instruction: from the cache when its key is there.
func (b *builder) step(ctx context.Context, st *stage, c instructions.Command, meta []arg) error {
	start := time.Now()
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(b.expander(st)); err != nil {
			return b.syntax(c.Location(), err)
		}
	}
	if ex, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := ex.ExpandRaw(b.expander(st)); err != nil {
			return b.syntax(c.Location(), err)
		}
	}
	text := c.(fmt.Stringer).String()
	b.out(fmt.Sprintf("STEP %d/%d: %s", b.n, b.total, text))
	rec := Step{N: b.n, Stage: st.name, Instruction: text}
	fail := func(err error, code int) error {
		var ue *UsageError
		if errors.As(err, &ue) {
			return err
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &StepError{Step: b.n, Instruction: text, ExitCode: code, Tail: b.lastLines(), Err: err}
	}

	// ARG changes only what later steps see; it is part of their keys.
	if a, ok := c.(*instructions.ArgCommand); ok {
		for _, kv := range a.Args {
			v, given := b.opt.Args[kv.Key]
			switch {
			case given:
				b.used[kv.Key] = true
			case kv.Value != nil:
				v = *kv.Value
			default:
				if i := slices.IndexFunc(meta, func(m arg) bool { return m.name == kv.Key }); i >= 0 {
					v = meta[i].value
				}
			}
			st.args = setArg(st.args, kv.Key, v)
		}
	}

	var srcDigest string
	var entries []copyEntry
	var src *source
	var cleanup func()
	defer func() {
		if cleanup != nil {
			cleanup()
		}
	}()
	switch cp := c.(type) {
	case *instructions.CopyCommand:
		var err error
		src, entries, cleanup, err = b.copySources(ctx, st, cp.From, cp.SourcesAndDest, cp.Chmod, false)
		if err != nil {
			return fail(err, 0)
		}
	case *instructions.AddCommand:
		var err error
		src, entries, cleanup, err = b.copySources(ctx, st, "", cp.SourcesAndDest, cp.Chmod, true)
		if err != nil {
			return fail(err, 0)
		}
	}
	if entries != nil {
		d, err := digestEntries(src, entries)
		if err != nil {
			return fail(err, 0)
		}
		srcDigest = d
	}
	key := cacheKey(st.digest, text, st.args, srcDigest)
	if !b.opt.NoCache {
		if img, d, ok := b.lookup(key); ok {
			cfg, err := img.ConfigFile()
			if err == nil {
				st.img, st.digest, st.cfg = img, d, cfg.DeepCopy()
				rec.Cached = true
				b.out("--> CACHED")
				b.finishStep(st, rec, start)
				return nil
			}
		}
	}
	cfg := st.cfg.DeepCopy()
	var layer *fileLayer
	createdBy := text
	switch c := c.(type) {
	case *instructions.RunCommand:
		l, code, err := b.run(ctx, st, c)
		rec.ExitCode = code
		if err != nil || code != 0 {
			return fail(err, code)
		}
		layer = l
		createdBy = "RUN " + strings.Join(runArgs(st, c), " ") + " # cairn"
	case *instructions.CopyCommand:
		l, err := b.writeCopy(st, src, entries, c.Chown)
		if err != nil {
			return fail(err, 0)
		}
		layer = l
	case *instructions.AddCommand:
		l, err := b.writeCopy(st, src, entries, c.Chown)
		if err != nil {
			return fail(err, 0)
		}
		layer = l
	case *instructions.WorkdirCommand:
		// As Docker: WORKDIR makes the directory when the image lacks it
		// (owned by the USER in effect), in a layer of its own.
		if err := applyConfig(cfg, c); err != nil {
			return fail(err, 0)
		}
		l, err := b.writeCopy(st, nil, []copyEntry{{dest: strings.TrimPrefix(cfg.Config.WorkingDir, "/"), mode: 0o755}}, cfg.Config.User)
		if err != nil {
			return fail(err, 0)
		}
		layer = l
	default:
		if err := applyConfig(cfg, c); err != nil {
			return fail(err, 0)
		}
	}
	if layer != nil && layer.entries == 0 && len(entries) == 0 {
		_ = os.Remove(layer.path)
		layer = nil
	}
	cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: b.epoch}, CreatedBy: createdBy, Comment: "cairn build", EmptyLayer: layer == nil})
	img := st.img
	if layer != nil {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, layer.diffID)
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
		if err != nil {
			return fail(err, 0)
		}
		rec.Layer, rec.Size = layer.digest.String(), layer.size
	}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return fail(err, 0)
	}
	h, err := b.store.WriteBlobs(img)
	if err != nil {
		return fail(err, 0)
	}
	if layer != nil {
		_ = os.Remove(layer.path)
	}
	stored, err := b.store.BlobImage(h)
	if err != nil {
		return fail(err, 0)
	}
	st.img, st.digest, st.cfg = stored, h.String(), cfg
	b.store0(key, h.String())
	if layer != nil {
		b.out(fmt.Sprintf("--> layer %s (%d bytes)", layer.digest.String()[:19], layer.size))
	}
	b.finishStep(st, rec, start)
	return nil
}

func (b *builder) finishStep(st *stage, rec Step, start time.Time) {
	rec.Duration = time.Since(start)
	b.steps = append(b.steps, rec)
	if b.onStep != nil {
		b.onStep(rec)
	}
}

// cacheKey is Docker's rule: the parent image, the instruction (as
// expanded), the ARGs in effect and, for COPY and ADD, the content digest
// of the sources.
func cacheKey(parent, text string, args []arg, sources string) string {
	h := sha256.New()
	fmt.Fprintf(h, "parent %s\ninstruction %s\n", parent, text)
	sorted := slices.Clone(args)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, a := range sorted {
		fmt.Fprintf(h, "arg %s=%s\n", a.name, a.value)
	}
	fmt.Fprintf(h, "sources %s\n", sources)
	return fmt.Sprintf("%x", h.Sum(nil))
}

func (b *builder) lookup(key string) (v1.Image, string, bool) {
	raw, err := os.ReadFile(filepath.Join(b.cache, key))
	if err != nil {
		return nil, "", false
	}
	h, err := v1.NewHash(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, "", false
	}
	img, err := b.store.BlobImage(h)
	if err != nil {
		return nil, "", false // pruned since
	}
	return img, h.String(), true
}

// store0 records a cache entry (best effort: a lost entry is a miss).
func (b *builder) store0(key, digest string) {
	tmp := filepath.Join(b.cache, key+".tmp")
	if err := os.WriteFile(tmp, []byte(digest+"\n"), 0o600); err == nil {
		_ = os.Rename(tmp, filepath.Join(b.cache, key))
	}
}

func (b *builder) lastLines() []string { return slices.Clone(b.tail) }

// applyConfig applies an instruction that changes only the image's
// config.
func applyConfig(cfg *v1.ConfigFile, c instructions.Command) error {
	conf := &cfg.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			conf.Env = setEnv(conf.Env, kv.Key, kv.Value)
		}
	case *instructions.ArgCommand:
	case *instructions.LabelCommand:
		if conf.Labels == nil {
			conf.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			conf.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		// Docker sets the author; the label is how a reader finds it in
		// an OCI config (Docker's docs tell users to write it so).
		cfg.Author = c.Maintainer
		if conf.Labels == nil {
			conf.Labels = map[string]string{}
		}
		conf.Labels["maintainer"] = c.Maintainer
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			wd = path.Join("/", conf.WorkingDir, wd)
		}
		conf.WorkingDir = path.Clean(wd)
	case *instructions.UserCommand:
		conf.User = c.User
	case *instructions.ExposeCommand:
		if conf.ExposedPorts == nil {
			conf.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			ports, err := exposedPorts(p)
			if err != nil {
				return err
			}
			for _, q := range ports {
				conf.ExposedPorts[q] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		if conf.Volumes == nil {
			conf.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			conf.Volumes[v] = struct{}{}
		}
	case *instructions.CmdCommand:
		conf.Cmd = withShellArgs(conf.Shell, c.CmdLine, c.PrependShell)
		conf.ArgsEscaped = true
	case *instructions.EntrypointCommand:
		conf.Entrypoint = withShellArgs(conf.Shell, c.CmdLine, c.PrependShell)
		conf.Cmd = nil // as Docker: an ENTRYPOINT resets the base's CMD (a later CMD sets it)
	case *instructions.HealthCheckCommand:
		h := c.Health
		conf.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.StopSignalCommand:
		conf.StopSignal = c.Signal
	case *instructions.ShellCommand:
		conf.Shell = c.Shell
	case *instructions.OnbuildCommand:
		conf.OnBuild = append(conf.OnBuild, c.Expression)
	default:
		return fmt.Errorf("%s is not supported by cairn's builder", strings.ToUpper(c.Name()))
	}
	return nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func withShellArgs(sh, args []string, prepend bool) []string {
	if !prepend {
		return slices.Clone(args)
	}
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(args, " "))
}

// exposedPorts reads an EXPOSE word: PORT[/PROTO] or a range.
func exposedPorts(p string) ([]string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: the protocol is tcp, udp or sctp", p)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("EXPOSE %s: %q is not a port", p, lo)
	}
	z := a
	if isRange {
		if z, err = strconv.ParseUint(hi, 10, 16); err != nil || z < a {
			return nil, fmt.Errorf("EXPOSE %s: %q is not a port range", p, port)
		}
	}
	var out []string
	for n := a; n <= z; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// runArgs is the command a RUN runs, as BuildKit makes it: a shell form
// (heredocs included) through the image's SHELL.
func runArgs(st *stage, c *instructions.RunCommand) []string {
	args := c.CmdLine
	if len(c.Files) > 0 && len(args) == 1 && c.PrependShell {
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			args = []string{data}
		} else {
			var sb strings.Builder
			sb.WriteString(args[0])
			for _, f := range c.Files {
				sb.WriteByte('\n')
				sb.WriteString(f.Data)
				sb.WriteString(f.Name)
			}
			args = []string{sb.String()}
		}
	}
	return withShellArgs(st.cfg.Config.Shell, args, c.PrependShell)
}

// view mounts img's file tree read-only under the build's directory and
// returns the mount point and how to release it.
func (b *builder) view(ctx context.Context, img v1.Image, name string) (string, func(), error) {
	lower, _, err := b.store.UnpackImage(ctx, img)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(b.work, "view-"+name)
	emptyDir := filepath.Join(b.work, "empty")
	for _, d := range []string{dir, emptyDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", nil, err
		}
	}
	if err := mountOverlay(dir, append(lower, emptyDir), "", ""); err != nil {
		return "", nil, err
	}
	return dir, func() { _ = unmount(dir); _ = os.Remove(dir) }, nil
}

// copySources resolves what a COPY or ADD writes, in the order it writes
// it. from is --from= (a stage or an image), "" for the context.
func (b *builder) copySources(ctx context.Context, st *stage, from string, sd instructions.SourcesAndDest, chmod string, add bool) (*source, []copyEntry, func(), error) {
	var release []func()
	cleanup := func() {
		for i := len(release) - 1; i >= 0; i-- {
			release[i]()
		}
	}
	src := b.ctxSrc
	if from != "" {
		var img v1.Image
		what := "stage " + from
		if j, ok := b.stageRef(from, len(b.df.Stages)); ok && b.stages[j] != nil {
			img = b.stages[j].img
		} else {
			_, i, err := b.store.Image(from)
			if err != nil {
				return nil, nil, cleanup, fmt.Errorf("--from=%s: no stage of that name before this one, and no image: %w", from, err)
			}
			img, what = i, "image "+from
		}
		dir, rel, err := b.view(ctx, img, "from")
		if err != nil {
			return nil, nil, cleanup, err
		}
		release = append(release, rel)
		root, err := os.OpenRoot(dir)
		if err != nil {
			cleanup()
			return nil, nil, nil, err
		}
		release = append(release, func() { root.Close() })
		src = &source{root: root, what: what}
	}
	var mode fs.FileMode
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, nil, cleanup, fmt.Errorf("--chmod=%s: give an octal mode such as 0755", chmod)
		}
		mode = fs.FileMode(m)
	}
	dest := sd.DestPath
	if !path.IsAbs(dest) {
		wd := st.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest) + map[bool]string{true: "/"}[strings.HasSuffix(sd.DestPath, "/") || sd.DestPath == "."]
	}
	destDir := strings.HasSuffix(dest, "/")
	dest = strings.TrimPrefix(path.Clean(dest), "/")
	var entries []copyEntry
	for _, c := range sd.SourceContents {
		d := dest
		if destDir {
			d = path.Join(dest, c.Path)
		}
		e := heredocEntry(d, c.Data)
		if mode != 0 {
			e.mode = mode
		}
		entries = append(entries, e)
	}
	var paths []string
	for _, p := range sd.SourcePaths {
		if add && (strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "git@")) {
			return nil, nil, cleanup, fmt.Errorf("ADD %s: cairn builds have no network, so ADD cannot download; fetch the file into the build context and COPY it", p)
		}
		ps, err := src.expand(p)
		if err != nil {
			return nil, nil, cleanup, err
		}
		paths = append(paths, ps...)
	}
	if len(paths)+len(sd.SourceContents) > 1 && !destDir {
		return nil, nil, cleanup, fmt.Errorf("%s: with several sources the destination must be a directory ending in /", sd.DestPath)
	}
	for _, p := range paths {
		fi, err := src.root.Stat(p)
		if err != nil {
			return nil, nil, cleanup, src.statError(p, err)
		}
		if fi.IsDir() {
			entries = append(entries, copyEntry{dest: dest, dir: true, mode: fileMode(fi, mode)})
			err := src.walk(p, func(rel string, fi fs.FileInfo) error {
				r := strings.TrimPrefix(strings.TrimPrefix(rel, p), "/")
				if p == "." {
					r = rel
				}
				entries = append(entries, copyEntry{dest: path.Join(dest, r), src: rel, fi: fi, dir: fi.IsDir(), mode: fileMode(fi, mode)})
				return nil
			})
			if err != nil {
				return nil, nil, cleanup, err
			}
			continue
		}
		d := dest
		if destDir || b.isDirIn(st, dest) {
			d = path.Join(dest, path.Base(p))
		}
		e := copyEntry{dest: d, src: p, fi: fi, mode: fileMode(fi, mode)}
		if add && src == b.ctxSrc && src.isArchive(p) {
			e.dest, e.archive = dest, true
		}
		entries = append(entries, e)
	}
	return src, entries, cleanup, nil
}

func fileMode(fi fs.FileInfo, chmod fs.FileMode) fs.FileMode {
	if chmod != 0 {
		return chmod
	}
	return fi.Mode().Perm()
}

// isDirIn says whether p (no leading /) is a directory in the stage's
// image, for COPY file /existing-dir.
func (b *builder) isDirIn(st *stage, p string) bool {
	if len(st.cfg.RootFS.DiffIDs) == 0 || p == "" {
		return p == ""
	}
	dir, rel, err := b.view(context.Background(), st.img, "dest")
	if err != nil {
		return false
	}
	defer rel()
	fi, err := os.Stat(filepath.Join(dir, p))
	return err == nil && fi.IsDir()
}

// writeCopy writes a COPY's entries as a layer, with parent directories
// the image lacks.
func (b *builder) writeCopy(st *stage, src *source, entries []copyEntry, chown string) (*fileLayer, error) {
	uid, gid := 0, 0
	var exists func(string) bool = func(string) bool { return false }
	if len(st.cfg.RootFS.DiffIDs) > 0 {
		dir, rel, err := b.view(context.Background(), st.img, "dest")
		if err != nil {
			return nil, err
		}
		defer rel()
		exists = func(p string) bool { _, err := os.Lstat(filepath.Join(dir, p)); return err == nil }
		if chown != "" {
			u, g, _, err := oci.ResolveUser(dir, chown)
			if err != nil {
				return nil, fmt.Errorf("--chown: %w", err)
			}
			uid, gid = int(u), int(g)
		}
	} else if chown != "" {
		u, g, _, err := oci.ResolveUser(b.work, chown)
		if err != nil {
			return nil, fmt.Errorf("--chown: %w", err)
		}
		uid, gid = int(u), int(g)
	}
	lw, err := newLayerWriter(filepath.Join(b.work, fmt.Sprintf("layer-%d.tar.gz", b.n)), b.epoch)
	if err != nil {
		return nil, err
	}
	written := map[string]bool{}
	parents := func(p string) error {
		var chain []string
		for d := path.Dir(p); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			chain = append(chain, d)
		}
		slices.Reverse(chain)
		for _, d := range chain {
			if written[d] || exists(d) {
				continue
			}
			written[d] = true
			if err := lw.add(dirHeader(d, 0o755, uid, gid), nil); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range entries {
		if err := parents(e.dest); err != nil {
			return nil, err
		}
		switch {
		case e.archive:
			if err := b.extractArchive(lw, src, e, parents); err != nil {
				return nil, err
			}
		case e.data != nil:
			written[e.dest] = true
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.dest, Mode: int64(e.mode), Size: int64(len(e.data)), Uid: uid, Gid: gid}
			if err := lw.add(hdr, strings.NewReader(string(e.data))); err != nil {
				return nil, err
			}
		case e.fi == nil: // a directory the COPY creates
			if e.dest == "" || written[e.dest] || exists(e.dest) {
				continue
			}
			written[e.dest] = true
			if err := lw.add(dirHeader(e.dest, e.mode, uid, gid), nil); err != nil {
				return nil, err
			}
		default:
			written[e.dest] = true
			hdr, err := tar.FileInfoHeader(e.fi, "")
			if err != nil {
				return nil, err
			}
			hdr.Name, hdr.Uid, hdr.Gid = e.dest, uid, gid
			hdr.Mode = int64(e.mode)
			var body io.Reader
			switch {
			case e.fi.IsDir():
				hdr.Name += "/"
			case e.fi.Mode()&fs.ModeSymlink != 0:
				l, err := src.root.Readlink(e.src)
				if err != nil {
					return nil, err
				}
				hdr.Linkname = l
				hdr.Mode = int64(e.fi.Mode().Perm())
			case e.fi.Mode().IsRegular():
				f, err := src.root.Open(e.src)
				if err != nil {
					return nil, src.statError(e.src, err)
				}
				defer f.Close()
				body = f
			default:
				continue // sockets, fifos and devices of a context are not copied
			}
			if err := lw.add(hdr, body); err != nil {
				return nil, err
			}
		}
	}
	return lw.finish()
}

// extractArchive writes the entries of a local tar ADD extracts under
// e.dest, refusing names that climb out of it.
func (b *builder) extractArchive(lw *layerWriter, src *source, e copyEntry, parents func(string) error) error {
	f, err := src.root.Open(e.src)
	if err != nil {
		return src.statError(e.src, err)
	}
	defer f.Close()
	r, err := archiveReader(f)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", e.src, err)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ADD %s: %w", e.src, err)
		}
		name := path.Clean("/" + hdr.Name)
		if strings.Contains(hdr.Name, "..") && path.Clean(hdr.Name) != strings.TrimPrefix(name, "/") {
			return fmt.Errorf("ADD %s: the entry %q climbs out of its directory: refused", e.src, hdr.Name)
		}
		hdr.Name = strings.TrimPrefix(path.Join(e.dest, name), "/")
		if hdr.Name == "" {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(path.Join(e.dest, path.Clean("/"+hdr.Linkname)), "/")
		}
		if err := parents(strings.TrimSuffix(hdr.Name, "/")); err != nil {
			return err
		}
		if err := lw.add(hdr, tr); err != nil {
			return err
		}
	}
}

// run runs a RUN step in a runc container over the stage's image and
// answers the layer of what it changed.
func (b *builder) run(ctx context.Context, st *stage, c *instructions.RunCommand) (*fileLayer, int, error) {
	network := b.opt.Network
	switch instructions.GetNetwork(c) {
	case instructions.NetworkHost:
		network = "host"
	case instructions.NetworkNone:
		network = "none"
	}
	lower, _, err := b.store.UnpackImage(ctx, st.img)
	if err != nil {
		return nil, 0, err
	}
	dir := filepath.Join(b.work, fmt.Sprintf("step-%d", b.n))
	mp := filepath.Join(dir, "mountpoints")
	for _, d := range []string{"rootfs", "upper", "work", "mountpoints/proc", "mountpoints/dev", "mountpoints/sys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, 0, err
		}
	}
	defer os.RemoveAll(dir)
	st2 := stepSpec{args: runArgs(st, c), cwd: st.cfg.Config.WorkingDir, user: st.cfg.Config.User, network: network}
	st2.env = st.env()
	if !slices.ContainsFunc(st2.env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		st2.env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, st2.env...)
	}
	skip := map[string]bool{}
	for _, m := range instructions.GetMounts(c) {
		switch m.Type {
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = m.Target
			}
			host := filepath.Join(b.mounts, fmt.Sprintf("%x", sha256.Sum256([]byte(id))))
			if err := os.MkdirAll(host, 0o755); err != nil {
				return nil, 0, err
			}
			st2.mounts = append(st2.mounts, specs.Mount{Destination: m.Target, Type: "bind", Source: host, Options: []string{"rbind", "rprivate"}})
		case instructions.MountTypeTmpfs:
			st2.mounts = append(st2.mounts, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
		default:
			return nil, 0, usagef("RUN --mount=type=%s: cairn's builder supports type=cache and type=tmpfs", m.Type)
		}
		t := strings.TrimPrefix(path.Clean(m.Target), "/")
		if err := os.MkdirAll(filepath.Join(mp, t), 0o755); err != nil {
			return nil, 0, err
		}
		skip[t] = true
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := mountOverlay(rootfs, append(lower, mp), filepath.Join(dir, "upper"), filepath.Join(dir, "work")); err != nil {
		return nil, 0, err
	}
	defer unmount(rootfs)
	if err := bundle(dir, b.containerID(), st2); err != nil {
		return nil, 0, err
	}
	id := b.containerID()
	b.current = id
	out := &lineWriter{emit: func(s string) {
		b.out(s)
		b.tail = append(b.tail, s)
		if len(b.tail) > 20 {
			b.tail = b.tail[len(b.tail)-20:]
		}
	}}
	b.tail = nil
	code, err := b.runc.run(ctx, dir, id, out)
	out.flush()
	b.current = ""
	if err != nil || code != 0 {
		return nil, code, err
	}
	if err := unmount(rootfs); err != nil {
		return nil, 0, fmt.Errorf("unmount the step's rootfs: %w", err)
	}
	lw, err := newLayerWriter(filepath.Join(b.work, fmt.Sprintf("layer-%d.tar.gz", b.n)), b.epoch)
	if err != nil {
		return nil, 0, err
	}
	if err := diffUpper(lw, filepath.Join(dir, "upper"), skip); err != nil {
		return nil, 0, err
	}
	l, err := lw.finish()
	return l, 0, err
}

func (b *builder) containerID() string { return fmt.Sprintf("build-%s-%d", b.id, b.n) }

// lineWriter splits output into lines as it comes.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}
