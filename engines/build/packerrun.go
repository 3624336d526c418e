package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cairnhq/cairn/engines/build/packer"
	"github.com/cairnhq/cairn/internal/ascaller"
	"github.com/cairnhq/cairn/journal"
)

// A Packer build runs on the same machinery as a Dockerfile: the
// builder's image is a stage, each shell provisioner a runc container
// whose changes are a layer, each file upload a COPY-like layer, the
// changes Dockerfile instructions applied to the config. One difference
// from Packer's docker builder, said in docs/build.md: each provisioner
// runs in a container of its own over the image so far, so a process a
// provisioner starts does not outlive it.

// packerJob is what every build of one template shares.
type packerJob struct {
	m       *module
	tmpl    *packer.Template
	dir     string // the template's directory
	cwd     string // the caller's working directory
	actor   journal.Actor
	cred    ascaller.Cred
	runUUID string
	outMu   sync.Mutex
	out     func(string)
	fileMu  sync.Mutex // manifest files several builds append to
}

func (j *packerJob) line(s string) {
	j.outMu.Lock()
	defer j.outMu.Unlock()
	j.out(s)
}

// artifact is what a builder made and post-processors pass on.
type artifact struct {
	id    string   // the image id, or a name after docker-tag
	files []string // files made (export_path, compress)
}

// runPackerBuild runs one builder of the template.
func (j *packerJob) runPackerBuild(ctx context.Context, pb packer.Builder) error {
	m := j.m
	id := newID()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &buildRun{ID: id, Context: j.tmpl.Path, File: pb.Name, Started: time.Now(), cancel: cancel, done: make(chan struct{}), status: "running"}
	defer close(run.done)
	m.mu.Lock()
	m.builds[id] = run
	m.order = append(m.order, id)
	m.mu.Unlock()
	say := func(format string, a ...any) { j.line("==> " + pb.Name + ": " + fmt.Sprintf(format, a...)) }
	if err := m.record(ctx, j.actor, "build.start", "build/"+id, map[string]any{
		"id": id, "packer": j.tmpl.Path, "template_digest": j.tmpl.Digest, "format": j.tmpl.Format, "builder": pb.Name, "builder_type": pb.Type, "image": pb.Image,
		"variables": j.tmpl.Redacted(),
	}); err != nil {
		return err
	}
	work := filepath.Join(m.dir, "work", id)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &builder{id: id, opt: Options{Network: "none"}, store: m.store, runc: m.runc, work: work, cache: filepath.Join(m.dir, "cache"),
		mounts: filepath.Join(m.dir, "mounts"), epoch: time.Unix(0, 0).UTC(), out: j.line, prefix: "    " + pb.Name + ": "}
	b.onStep = func(s Step) {
		run.mu.Lock()
		run.steps = append(run.steps, s)
		run.mu.Unlock()
		_ = m.record(ctx, j.actor, "build.step", "build/"+id, map[string]any{
			"id": id, "step": s.N, "stage": s.Stage, "instruction": s.Instruction, "cached": false,
			"layer": s.Layer, "size": s.Size, "duration_ms": s.Duration.Milliseconds(), "exit_code": s.ExitCode,
		})
	}
	for _, f := range pb.Ignored {
		say("warning: %s is ignored here (provisioners run in runc containers of cairn's image store)", f)
	}
	art, err := j.build(bctx, b, pb, say)
	if err == nil {
		err = j.postProcess(bctx, b, pb, art, id, say)
	}
	if err != nil {
		_ = m.failed(ctx, j.actor, run, b, err)
		say("error: %v", err)
		return fmt.Errorf("%s: %w", pb.Name, err)
	}
	run.mu.Lock()
	run.status, run.ended, run.image = "done", time.Now(), art.id
	run.mu.Unlock()
	return m.record(ctx, j.actor, "build.done", "build/"+id, map[string]any{
		"id": id, "image": art.id, "files": art.files, "builder": pb.Name, "duration_ms": time.Since(run.Started).Milliseconds(),
	})
}

// build runs the builder and its provisioners: the artifact is the
// committed image (untagged; docker-tag names it) and the exported file.
func (j *packerJob) build(ctx context.Context, b *builder, pb packer.Builder, say func(string, ...any)) (artifact, error) {
	b.n = 1
	say("Creating a container from %s (%s builder)", pb.Image, pb.Type)
	st, err := b.baseStage(pb.Image, 0, pb.Name)
	if err != nil {
		return artifact{}, err
	}
	for i, p := range pb.Provisioners {
		if !packer.Applies(p.Only, p.Except, pb.Name, pb.Type) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return artifact{}, err
		}
		b.n++
		if err := j.provision(ctx, b, st, pb, i, p, say); err != nil {
			return artifact{}, err
		}
	}
	if len(pb.Changes) > 0 {
		cfg := st.cfg.DeepCopy()
		for _, ch := range pb.Changes {
			res, err := parser.Parse(strings.NewReader(ch))
			if err != nil || len(res.AST.Children) != 1 {
				return artifact{}, fmt.Errorf("changes: %q is not one Dockerfile instruction: %v", ch, err)
			}
			c, err := instructions.ParseCommand(res.AST.Children[0])
			if err != nil {
				return artifact{}, fmt.Errorf("changes: %q: %w", ch, err)
			}
			if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
				b.lex = shell.NewLex('\\')
				if err := ex.Expand(b.expander(st)); err != nil {
					return artifact{}, fmt.Errorf("changes: %q: %w", ch, err)
				}
			}
			if err := applyConfig(cfg, c); err != nil {
				return artifact{}, fmt.Errorf("changes: %q: %w", ch, err)
			}
		}
		img, err := mutate.ConfigFile(st.img, cfg)
		if err != nil {
			return artifact{}, err
		}
		st.img, st.cfg = img, cfg
	}
	var art artifact
	if pb.Commit {
		im, err := b.store.Add(st.img)
		if err != nil {
			return artifact{}, err
		}
		art.id = im.ID
		say("Committed the image: %s", im.ID)
	}
	if pb.ExportPath != "" {
		p := j.abs(pb.ExportPath)
		if err := j.asCaller(func() error { return exportRootfs(st.img, p) }); err != nil {
			return artifact{}, fmt.Errorf("export_path %s: %w", p, err)
		}
		art.files = append(art.files, p)
		if art.id == "" {
			art.id = p
		}
		say("Exported the image's file system to %s", p)
	}
	return art, nil
}

func (j *packerJob) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(j.cwd, p)
}

// asCaller does file work on the host with the caller's credentials.
func (j *packerJob) asCaller(fn func() error) error { return ascaller.Do(j.cred, fn) }

// exportRootfs writes img's file system, flattened, as a tar (docker
// export's, which Packer's export_path writes).
func exportRootfs(img v1.Image, p string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// provision runs one provisioner as a step of the build.
func (j *packerJob) provision(ctx context.Context, b *builder, st *stage, pb packer.Builder, i int, p packer.Provisioner, say func(string, ...any)) error {
	start := time.Now()
	rec := Step{N: b.n, Stage: pb.Name, Instruction: fmt.Sprintf("provisioner %s #%d", p.Type, i+1)}
	switch p.Type {
	case "shell":
		scripts, err := j.scripts(p, filepath.Join(b.work, fmt.Sprintf("prov-%d", i+1)))
		if err != nil {
			return err
		}
		for k, sc := range scripts {
			say("Provisioning with shell script: %s", sc.name)
			remote := fmt.Sprintf("/tmp/packer-shell-%d-%d.sh", i+1, k+1)
			vars := []string{"PACKER_BUILD_NAME='" + pb.Name + "'", "PACKER_BUILDER_TYPE='" + pb.Type + "'"}
			for _, kv := range p.EnvVars {
				k, v, _ := strings.Cut(kv, "=")
				vars = append(vars, k+"='"+strings.ReplaceAll(v, "'", `'"'"'`)+"'")
			}
			execCmd := p.ExecuteCommand
			if execCmd == "" {
				execCmd = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
			}
			cmd, err := packer.Render(execCmd, map[string]string{"Path": remote, "Vars": strings.Join(vars, " ")})
			if err != nil {
				return fmt.Errorf("execute_command: %w", err)
			}
			spec := stepSpec{args: []string{"/bin/sh", "-c", cmd}, network: "none",
				mounts: []specs.Mount{{Destination: remote, Type: "bind", Source: sc.path, Options: []string{"rbind", "rprivate"}}}}
			l, code, err := b.runContainer(ctx, st, spec)
			if err != nil || code != 0 {
				rec.ExitCode = code
				if err == nil {
					err = fmt.Errorf("script exited with non-zero exit status: %d", code)
				}
				return &StepError{Step: b.n, Instruction: rec.Instruction, ExitCode: code, Tail: b.lastLines(), Err: err}
			}
			if err := j.commitLayer(b, st, l, rec.Instruction, &rec); err != nil {
				return err
			}
		}
	case "file":
		if p.Direction == "download" {
			say("Downloading %s => %s", p.Source, p.Destination)
			if err := j.download(ctx, b, st, p); err != nil {
				return err
			}
			break
		}
		srcs := p.Sources
		if p.Source != "" {
			srcs = append([]string{p.Source}, srcs...)
		}
		for _, s := range srcs {
			say("Uploading %s => %s", s, p.Destination)
			l, err := j.upload(ctx, b, st, s, p.Destination, len(srcs) > 1)
			if err != nil {
				return err
			}
			if err := j.commitLayer(b, st, l, rec.Instruction, &rec); err != nil {
				return err
			}
		}
	case "shell-local":
		say("Running local shell script")
		if err := j.local(ctx, b, pb, p.Inline, p.Command, p.Script, p.Scripts, p.EnvVars); err != nil {
			return &StepError{Step: b.n, Instruction: rec.Instruction, Tail: b.lastLines(), Err: err}
		}
	}
	b.finishStep(st, rec, start)
	return nil
}

// commitLayer adds a provisioner's layer to the stage's image.
func (j *packerJob) commitLayer(b *builder, st *stage, l *fileLayer, what string, rec *Step) error {
	if l == nil || l.entries == 0 {
		return nil
	}
	cfg := st.cfg.DeepCopy()
	cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: b.epoch}, CreatedBy: "packer " + what, Comment: "cairn build"})
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	img, err := mutate.Append(st.img, mutate.Addendum{Layer: l, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"})
	if err != nil {
		return err
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	h, err := b.store.WriteBlobs(img)
	if err != nil {
		return err
	}
	_ = os.Remove(l.path)
	stored, err := b.store.BlobImage(h)
	if err != nil {
		return err
	}
	st.img, st.digest, st.cfg = stored, h.String(), cfg
	rec.Layer, rec.Size = l.digest.String(), rec.Size+l.size
	return nil
}

type script struct{ name, path string }

// scripts writes a shell provisioner's scripts into the build's
// directory: inline lines behind the shebang, script(s) read as the
// caller.
func (j *packerJob) scripts(p packer.Provisioner, dir string) ([]script, error) {
	var out []script
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	write := func(name string, data []byte) error {
		f := filepath.Join(dir, fmt.Sprintf("script-%d.sh", len(out)+1))
		if err := os.WriteFile(f, data, 0o755); err != nil {
			return err
		}
		out = append(out, script{name: name, path: f})
		return nil
	}
	if len(p.Inline) > 0 {
		shebang := p.InlineShebang
		if shebang == "" {
			shebang = "/bin/sh -e"
		}
		if err := write("inline", []byte("#!"+shebang+"\n"+strings.Join(p.Inline, "\n")+"\n")); err != nil {
			return nil, err
		}
	}
	files := p.Scripts
	if p.Script != "" {
		files = append([]string{p.Script}, files...)
	}
	for _, f := range files {
		path := f
		if !filepath.IsAbs(path) {
			path = filepath.Join(j.dir, f)
		}
		var data []byte
		if err := j.asCaller(func() error {
			var err error
			data, err = os.ReadFile(path)
			return err
		}); err != nil {
			return nil, fmt.Errorf("script %s: %w", f, err)
		}
		if err := write(f, data); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// upload copies a host file or directory into the image, as Packer's file
// provisioner: a directory source ending in / copies its contents.
func (j *packerJob) upload(ctx context.Context, b *builder, st *stage, src, dest string, many bool) (*fileLayer, error) {
	p := src
	if !filepath.IsAbs(p) {
		p = filepath.Join(j.dir, src)
	}
	contents := strings.HasSuffix(src, "/")
	p = filepath.Clean(p)
	if err := j.asCaller(func() error {
		_, err := os.Stat(p)
		return err
	}); err != nil {
		return nil, fmt.Errorf("file provisioner: source %s: %w", src, err)
	}
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	s := &source{root: root, what: "the file provisioner's source"}
	name := filepath.Base(p)
	fi, err := root.Stat(name)
	if err != nil {
		return nil, s.statError(src, err)
	}
	if fi.IsDir() && !contents && !strings.HasSuffix(dest, "/") {
		dest += "/" + name
	} else if fi.IsDir() && !contents {
		dest += name
	}
	if many && !strings.HasSuffix(dest, "/") {
		dest += "/"
	}
	saved := b.ctxSrc
	b.ctxSrc = s
	defer func() { b.ctxSrc = saved }()
	_, entries, cleanup, err := b.copySources(ctx, st, "", instructions.SourcesAndDest{SourcePaths: []string{name}, DestPath: dest}, "", false)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return nil, err
	}
	return b.writeCopy(st, s, entries, "")
}

// download copies a file or directory of the image to the host, written
// as the caller.
func (j *packerJob) download(ctx context.Context, b *builder, st *stage, p packer.Provisioner) error {
	dir, release, err := b.view(ctx, st.img, "download")
	if err != nil {
		return err
	}
	defer release()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	src := strings.TrimPrefix(filepath.Clean("/"+p.Source), "/")
	dest := j.abs(p.Destination)
	fi, err := root.Stat(src)
	if err != nil {
		return fmt.Errorf("file provisioner: download %s: %w", p.Source, err)
	}
	if !fi.IsDir() {
		data, err := root.ReadFile(src)
		if err != nil {
			return err
		}
		return j.asCaller(func() error {
			if st, err := os.Stat(dest); err == nil && st.IsDir() {
				dest = filepath.Join(dest, filepath.Base(src))
			}
			return os.WriteFile(dest, data, fi.Mode().Perm())
		})
	}
	return fs.WalkDir(root.FS(), src, func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, rel)
		out := filepath.Join(dest, r)
		if d.IsDir() {
			return j.asCaller(func() error { return os.MkdirAll(out, 0o755) })
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := root.ReadFile(rel)
		if err != nil {
			return err
		}
		return j.asCaller(func() error { return os.WriteFile(out, data, 0o644) })
	})
}

// local runs a shell-local script on the host, as the caller, in the
// template's directory.
func (j *packerJob) local(ctx context.Context, b *builder, pb packer.Builder, inline []string, command, scriptFile string, scripts, env []string) error {
	var body string
	switch {
	case len(inline) > 0:
		body = strings.Join(inline, "\n")
	case command != "":
		body = command
	default:
		files := scripts
		if scriptFile != "" {
			files = append([]string{scriptFile}, files...)
		}
		var parts []string
		for _, f := range files {
			if !filepath.IsAbs(f) {
				f = filepath.Join(j.dir, f)
			}
			parts = append(parts, "/bin/sh "+shellQuote(f))
		}
		body = strings.Join(parts, " && ")
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-ec", body)
	cmd.Dir = j.dir
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PACKER_BUILD_NAME=" + pb.Name, "PACKER_BUILDER_TYPE=" + pb.Type}, env...)
	if ascaller.Needed(j.cred) {
		groups := make([]uint32, len(j.cred.Groups))
		for i, g := range j.cred.Groups {
			groups[i] = uint32(g)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(j.cred.UID), Gid: uint32(j.cred.GID), Groups: groups}}
	}
	out := &lineWriter{emit: func(s string) {
		b.out(b.prefix + s)
		b.tail = append(b.tail, s)
		if len(b.tail) > 20 {
			b.tail = b.tail[len(b.tail)-20:]
		}
	}}
	b.tail = nil
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.flush()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("the local script exited with code %d", ee.ExitCode())
	}
	return err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }
