package build

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/cairnhq/cairn/engines/runtime/image"
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
	prefix  string // put before each output line of a step (Packer's "    NAME: ")
	// asCaller does host file work with the caller's credentials
	// (internal/ascaller); nil does it as the daemon.
	callerDo func(func() error) error
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
	return b.expanderNoting(st, nil)
}

// expanderNoting is expander that also notes the variables a word used
// that neither ENV nor ARG defines (BuildKit's UndefinedVar warning).
func (b *builder) expanderNoting(st *stage, undefined map[string]bool) instructions.SingleWordExpander {
	env := shell.EnvsFromSlice(st.env())
	return func(word string) (string, error) {
		res, err := b.lex.ProcessWordWithMatches(word, env)
		for name := range res.Unmatched {
			if undefined != nil {
				undefined[name] = true
			}
		}
		return res.Result, err
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
	if b.df == nil { // a Packer build has no stages
		return 0, false
	}
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
	var unused []string
	for _, k := range slices.Sorted(maps.Keys(b.opt.Args)) {
		if !b.used[k] && k != "SOURCE_DATE_EPOCH" {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		b.out(fmt.Sprintf("[Warning] One or more build-args [%s] were not consumed", strings.Join(unused, " ")))
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
	st, err := b.baseStage(base, i, s.Name)
	if err != nil {
		b.out(fmt.Sprintf("STEP %d/%d: %s", b.n, b.total, s.SourceCode))
		return nil, err
	}
	// The base's ONBUILD triggers are steps of this build too: counted
	// before the first STEP line, so n/m never changes its m.
	b.total += len(st.cfg.Config.OnBuild)
	b.out(fmt.Sprintf("STEP %d/%d: %s", b.n, b.total, s.SourceCode))
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

// baseStage starts a stage FROM base: scratch, an earlier stage (before
// stage i), or an image of the store.
func (b *builder) baseStage(base string, i int, name string) (*stage, error) {
	st := &stage{name: name}
	if st.name == "" {
		st.name = strconv.Itoa(i)
	}
	switch {
	case strings.HasPrefix(base, "oci-layout://"):
		img, err := b.layoutImage(strings.TrimPrefix(base, "oci-layout://"))
		if err != nil {
			return nil, &StepError{Step: b.n, Instruction: "FROM " + base, Err: err}
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("FROM %s: %w", base, err)
		}
		st.img, st.digest, st.cfg = img, d.String(), cfg.DeepCopy()
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
		var img v1.Image
		var err error
		if _, digest, ok := strings.Cut(base, "@"); ok {
			// NAME@sha256:…: the image whose manifest has that digest,
			// named or not (Docker's pinned FROM).
			var h v1.Hash
			if h, err = v1.NewHash(digest); err == nil {
				img, err = b.store.BlobImage(h)
			}
		} else {
			_, img, err = b.store.Image(base)
		}
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
	return st, nil
}

// layoutImage reads FROM oci-layout:///DIR[:TAG]: the image of the OCI
// layout DIR whose ref name is TAG (or its only image). The caller must be
// able to read the layout's index and every blob of the image: each is
// opened as the caller first.
func (b *builder) layoutImage(ref string) (v1.Image, error) {
	dir, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		dir, tag = ref[:i], ref[i+1:]
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("oci-layout://%s: give the layout's absolute path (oci-layout:///DIR:TAG)", ref)
	}
	var img v1.Image
	err := b.asCaller(func() error {
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		var found []v1.Descriptor
		for _, d := range m.Manifests {
			if tag == "" || d.Annotations["org.opencontainers.image.ref.name"] == tag {
				found = append(found, d)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d images named %q in the layout (give :TAG, the ref name of one)", len(found), tag)
		}
		if img, err = idx.Image(found[0].Digest); err != nil {
			return err
		}
		mf, err := img.Manifest()
		if err != nil {
			return err
		}
		for _, d := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
			f, err := os.Open(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
			if err != nil {
				return err
			}
			f.Close()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oci-layout://%s: %w", ref, err)
	}
	return img, nil
}

// step runs one instruction: from the cache when its key is there.
func (b *builder) step(ctx context.Context, st *stage, c instructions.Command, meta []arg) error {
	start := time.Now()
	undefined := map[string]bool{}
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(b.expanderNoting(st, undefined)); err != nil {
			return b.syntax(c.Location(), err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(undefined)) {
		line := 0
		if loc := c.Location(); len(loc) > 0 {
			line = loc[0].Start.Line
		}
		b.out(fmt.Sprintf("[Warning] UndefinedVar: Usage of undefined variable '$%s' (%s:%d)", name, b.df.Name, line))
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
	key := cacheKey(st.digest, b.epoch.Unix(), text, st.args, srcDigest)
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

func (b *builder) lastLines() []string { return slices.Clone(b.tail) }
