package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

// buildRun is one build of this daemon, running or ended, for build
// list, show and cancel.
type buildRun struct {
	ID      string    `json:"id"`
	Context string    `json:"context"`
	File    string    `json:"dockerfile"`
	Tags    []string  `json:"tags"`
	Started time.Time `json:"started"`

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	status  string // running, done, failed, canceled
	ended   time.Time
	image   string
	digest  string
	steps   []Step
	errText string
}

func (m *module) Verbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "build",
			Access:  dsl.AccessHost,
			Summary: "build an image from a Dockerfile into the image store",
			Help: "build PATH reads PATH/Dockerfile (file= another, relative to PATH) with BuildKit's parser and builds it\n" +
				"into the runtime's image store: RUN steps are runc containers (network none unless network=host),\n" +
				"COPY and ADD read the context PATH minus its .dockerignore. Steps whose parent, instruction, ARGs and\n" +
				"sources are unchanged come from the cache (CACHED) unless no-cache. Output streams as it happens.\n\n" +
				"  build ./app tag=app:1.0\n  build ./app file=Dockerfile.prod target=runtime build-arg.VERSION=2 label.team=ops no-cache",
			Args:  []dsl.Arg{{Name: "PATH", Required: true, Help: "the build context directory (relative to your working directory)"}},
			Flags: []dsl.Flag{{Name: "no-cache", Help: "run every step, ignoring the layer cache"}},
			Options: []dsl.Option{
				{Name: "file", Meta: "FILE", Help: "the Dockerfile, relative to PATH (default Dockerfile)"},
				{Name: "network", Meta: "MODE", Help: "RUN steps' network: none (default) or host"},
				{Name: "tag", Meta: "NAME[:TAG]", Repeatable: true, Help: "name the image"},
				{Name: "target", Meta: "STAGE", Help: "build up to this stage"},
			},
			Bag: true,
		}, Run: m.runBuild},
		{Spec: dsl.Spec{
			Verb:    "build cancel",
			Access:  dsl.AccessHost,
			Summary: "stop a running build",
			Help:    "build cancel ID kills the running step's container; nothing is tagged and no mount is left.",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "the build's id (build list)"}},
		}, Run: m.runCancel},
		{Spec: dsl.Spec{
			Verb:    "build list",
			Access:  dsl.AccessRead,
			Summary: "the builds of this daemon, running and ended",
		}, Run: m.runList},
		{Spec: dsl.Spec{
			Verb:    "build show",
			Access:  dsl.AccessRead,
			Summary: "a build's steps: instruction, cached, layer, size, duration",
			Args:    []dsl.Arg{{Name: "ID", Required: true, Help: "the build's id (build list)"}},
		}, Run: m.runShow},
	}
}

// resolvePath makes p absolute: a relative path is taken from the
// caller's working directory (/proc/PID/cwd of the peer).
func resolvePath(r engines.Request, w dsl.Word) (string, error) {
	p := w.Text
	if p == "" {
		return "", engines.Errorf(wire.InvalidArgument, w, "PATH is empty; give the build context directory")
	}
	if !filepath.IsAbs(p) {
		pid := r.Actor().PID
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if pid <= 0 || err != nil {
			return "", engines.Errorf(wire.InvalidArgument, w, "%s is relative and the caller's working directory is unknown; give an absolute path", p)
		}
		p = filepath.Join(cwd, p)
	}
	return filepath.Clean(p), nil
}

func credOf(a journal.Actor) ascaller.Cred {
	if a.Via == "system" {
		return ascaller.Cred{UID: os.Geteuid(), GID: os.Getegid()}
	}
	return ascaller.Cred{UID: a.UID, GID: a.GID, Groups: a.Groups}
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// secretish says whether a build arg's name looks like a secret, whose
// value build.start does not record.
func secretish(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"secret", "password", "passwd", "token", "key", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func (m *module) options(r engines.Request) (Options, error) {
	st := r.Statement()
	var o Options
	ctxDir, err := resolvePath(r, st.Args["PATH"])
	if err != nil {
		return o, err
	}
	o.Context = ctxDir
	file := "Dockerfile"
	if w, ok := st.Opt("file"); ok {
		file = w.Text
	}
	if filepath.IsAbs(file) {
		o.Dockerfile = filepath.Clean(file)
	} else {
		o.Dockerfile = filepath.Join(ctxDir, file)
	}
	for _, w := range st.Options["tag"] {
		o.Tags = append(o.Tags, w.Text)
	}
	if w, ok := st.Opt("target"); ok {
		o.Target = w.Text
	}
	o.Network = "none"
	if w, ok := st.Opt("network"); ok {
		if w.Text != "none" && w.Text != "host" {
			return o, engines.Errorf(wire.InvalidArgument, w, "network=%s: RUN steps' network is none or host", w.Text)
		}
		o.Network = w.Text
	}
	o.NoCache = st.Flags["no-cache"]
	o.Args, o.Labels = map[string]string{}, map[string]string{}
	for _, b := range st.Bag {
		switch {
		case strings.HasPrefix(b.Key, "build-arg.") && len(b.Key) > len("build-arg."):
			o.Args[strings.TrimPrefix(b.Key, "build-arg.")] = b.Value.Text
		case strings.HasPrefix(b.Key, "label.") && len(b.Key) > len("label."):
			o.Labels[strings.TrimPrefix(b.Key, "label.")] = b.Value.Text
		default:
			return o, wire.Errorf(wire.InvalidArgument, "%d:%d: unknown option %q: build takes file=, tag=, target=, network=, build-arg.K=V and label.K=V", b.Pos.Line, b.Pos.Col, b.Key)
		}
	}
	return o, nil
}

func (m *module) runBuild(ctx context.Context, r engines.Request) error {
	opt, err := m.options(r)
	if err != nil {
		return err
	}
	actor := r.Actor()
	cred := credOf(actor)
	flush := func() {
		if f, ok := r.(engines.Flusher); ok {
			_ = f.Flush()
		}
	}
	out := func(s string) {
		_ = r.Line(s)
		flush()
	}

	// The Dockerfile and the context are read as the caller: a context
	// the caller cannot read is refused (the infra engine's rule).
	var src []byte
	if err := ascaller.Do(cred, func() error {
		var err error
		src, err = os.ReadFile(opt.Dockerfile)
		return err
	}); err != nil {
		return wire.Errorf(wire.InvalidArgument, "build: read the Dockerfile: %v", err)
	}
	rel, err := filepath.Rel(opt.Context, opt.Dockerfile)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = opt.Dockerfile
	}
	df, err := ParseDockerfile(rel, src)
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "%v", err)
	}
	for _, w := range df.Warnings {
		out("[Warning] " + w)
	}
	root, err := os.OpenRoot(opt.Context)
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "build: the context %s: %v", opt.Context, err)
	}
	defer root.Close()
	ignore, err := readIgnore(root, filepath.Base(opt.Dockerfile)+".dockerignore", ".dockerignore")
	if err != nil {
		return wire.Errorf(wire.InvalidArgument, "build: %v", err)
	}
	ctxSrc := &source{root: root, what: "the build context", ignore: ignore}
	if ascaller.Needed(cred) {
		if err := ascaller.Do(cred, func() error { return readable(opt.Context, ctxSrc) }); err != nil {
			return wire.Errorf(wire.PermissionDenied, "build: the context %s: %v (it is read as you)", opt.Context, err)
		}
	}

	id := newID()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &buildRun{ID: id, Context: opt.Context, File: opt.Dockerfile, Tags: opt.Tags, Started: time.Now(), cancel: cancel, done: make(chan struct{}), status: "running"}
	defer close(run.done)
	m.mu.Lock()
	m.builds[id] = run
	m.order = append(m.order, id)
	m.mu.Unlock()

	args := map[string]any{}
	for k, v := range opt.Args {
		if secretish(k) {
			v = "<redacted>"
		}
		args[k] = v
	}
	if err := m.record(ctx, actor, "build.start", "build/"+id, map[string]any{
		"id": id, "context": opt.Context, "dockerfile": rel, "dockerfile_digest": df.Digest, "args": args,
		"target": opt.Target, "tags": opt.Tags, "no_cache": opt.NoCache, "network": opt.Network,
	}); err != nil {
		return err
	}
	out(fmt.Sprintf("build %s: %s (%s)", id, opt.Context, rel))

	epoch := time.Unix(0, 0).UTC()
	if v, ok := opt.Args["SOURCE_DATE_EPOCH"]; ok {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			return wire.Errorf(wire.InvalidArgument, "build-arg.SOURCE_DATE_EPOCH=%s: give seconds since 1970", v)
		}
		epoch = time.Unix(n, 0).UTC()
	}
	work := filepath.Join(m.dir, "work", id)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &builder{id: id, opt: opt, df: df, store: m.store, runc: m.runc, work: work, cache: filepath.Join(m.dir, "cache"),
		mounts: filepath.Join(m.dir, "mounts"), epoch: epoch, out: out, ctxSrc: ctxSrc}
	b.onStep = func(s Step) {
		run.mu.Lock()
		run.steps = append(run.steps, s)
		run.mu.Unlock()
		_ = m.record(ctx, actor, "build.step", "build/"+id, map[string]any{
			"id": id, "step": s.N, "stage": s.Stage, "instruction": s.Instruction, "cached": s.Cached,
			"layer": s.Layer, "size": s.Size, "duration_ms": s.Duration.Milliseconds(), "exit_code": s.ExitCode,
		})
	}
	img, err := b.Run(bctx)
	var stored string
	var digest string
	if err == nil {
		im, aerr := m.store.Add(img, opt.Tags...)
		if aerr != nil {
			err = aerr
		} else {
			stored, digest = im.ID, im.Digest
		}
	}
	if err != nil {
		return m.failed(ctx, actor, run, b, err)
	}
	for _, t := range opt.Tags {
		if err := m.tags.RecordTag(ctx, actor, stored, t, id); err != nil {
			return err
		}
	}
	run.mu.Lock()
	run.status, run.ended, run.image, run.digest = "done", time.Now(), stored, digest
	run.mu.Unlock()
	if err := m.record(ctx, actor, "build.done", "build/"+id, map[string]any{
		"id": id, "image": stored, "digest": digest, "tags": opt.Tags, "duration_ms": time.Since(run.Started).Milliseconds(),
	}); err != nil {
		return err
	}
	out("COMMIT " + strings.Join(opt.Tags, " "))
	for _, t := range opt.Tags {
		out("Successfully tagged " + t)
	}
	out("image " + stored + " digest " + digest)
	return nil
}

// failed records build.fail and answers the error, with the code the CLI
// turns into its exit status: 2 for bad input, 1 otherwise.
func (m *module) failed(ctx context.Context, actor journal.Actor, run *buildRun, b *builder, err error) error {
	data := map[string]any{"id": run.ID, "error": err.Error()}
	var se *StepError
	if errors.As(err, &se) {
		data["step"] = se.Step
		data["instruction"] = se.Instruction
		data["exit_code"] = se.ExitCode
		data["output"] = se.Tail
	}
	status := "failed"
	if errors.Is(err, context.Canceled) {
		status = "canceled"
		data["error"] = "canceled"
		data["step"] = b.n
	}
	run.mu.Lock()
	run.status, run.ended, run.errText = status, time.Now(), data["error"].(string)
	run.mu.Unlock()
	if rerr := m.record(context.WithoutCancel(ctx), actor, "build.fail", "build/"+run.ID, data); rerr != nil {
		return rerr
	}
	var ue *UsageError
	switch {
	case errors.As(err, &ue):
		return wire.Errorf(wire.InvalidArgument, "build %s: %v", run.ID, err)
	case status == "canceled":
		return wire.Errorf(wire.Canceled, "build %s: canceled at step %d; nothing was tagged", run.ID, b.n)
	}
	return wire.Errorf(wire.FailedPrecondition, "build %s: %v; nothing was tagged", run.ID, err)
}

// readable opens every file of the context the build may read, as the
// caller.
func readable(dir string, src *source) error {
	return src.walk(".", func(rel string, fi fs.FileInfo) error {
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		return f.Close()
	})
}

func (m *module) find(w dsl.Word) (*buildRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.builds[w.Text]; ok {
		return b, nil
	}
	return nil, engines.Errorf(wire.NotFound, w, "no build %q (build list shows them)", w.Text)
}

type listRow struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Started  string   `json:"started"`
	Duration string   `json:"duration"`
	Steps    int      `json:"steps"`
	Image    string   `json:"image"`
	Tags     []string `json:"tags"`
	Context  string   `json:"context"`
}

func (m *module) runList(ctx context.Context, r engines.Request) error {
	m.mu.Lock()
	ids := slices.Clone(m.order)
	m.mu.Unlock()
	for _, id := range ids {
		m.mu.Lock()
		b := m.builds[id]
		m.mu.Unlock()
		b.mu.Lock()
		end := b.ended
		if end.IsZero() {
			end = time.Now()
		}
		row := listRow{ID: b.ID, Status: b.status, Started: b.Started.UTC().Format(time.RFC3339), Duration: end.Sub(b.Started).Round(time.Millisecond).String(),
			Steps: len(b.steps), Image: b.image, Tags: b.Tags, Context: b.Context}
		b.mu.Unlock()
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

type stepRow struct {
	Step        int    `json:"step"`
	Stage       string `json:"stage"`
	Instruction string `json:"instruction"`
	Cached      bool   `json:"cached"`
	Layer       string `json:"layer"`
	Size        int64  `json:"size"`
	Duration    string `json:"duration"`
	ExitCode    int    `json:"exit_code"`
}

func (m *module) runShow(ctx context.Context, r engines.Request) error {
	b, err := m.find(r.Statement().Args["ID"])
	if err != nil {
		return err
	}
	b.mu.Lock()
	steps := slices.Clone(b.steps)
	b.mu.Unlock()
	for _, s := range steps {
		if err := r.Row(stepRow{Step: s.N, Stage: s.Stage, Instruction: s.Instruction, Cached: s.Cached, Layer: s.Layer, Size: s.Size,
			Duration: s.Duration.Round(time.Millisecond).String(), ExitCode: s.ExitCode}); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) runCancel(ctx context.Context, r engines.Request) error {
	b, err := m.find(r.Statement().Args["ID"])
	if err != nil {
		return err
	}
	b.cancel()
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.Row(map[string]any{"id": b.ID, "status": b.status})
}
