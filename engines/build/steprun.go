package build

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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
	spec := stepSpec{args: runArgs(st, c), network: network}
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
			spec.mounts = append(spec.mounts, specs.Mount{Destination: m.Target, Type: "bind", Source: host, Options: []string{"rbind", "rprivate"}})
		case instructions.MountTypeTmpfs:
			spec.mounts = append(spec.mounts, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
		default:
			return nil, 0, usagef("RUN --mount=type=%s: cairn's builder supports type=cache and type=tmpfs", m.Type)
		}
	}
	return b.runContainer(ctx, st, spec)
}

// runContainer runs spec's command in a runc container over the stage's
// image (its env, user and workdir, spec's added to them) and answers
// the layer of what it changed. The targets of spec's mounts are made in
// a lower layer of their own, so they are not in the step's layer.
func (b *builder) runContainer(ctx context.Context, st *stage, spec stepSpec) (*fileLayer, int, error) {
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
	spec.cwd, spec.user = st.cfg.Config.WorkingDir, st.cfg.Config.User
	env := st.env()
	for _, kv := range spec.env {
		k, v, _ := strings.Cut(kv, "=")
		env = setEnv(env, k, v)
	}
	spec.env = env
	if !slices.ContainsFunc(spec.env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		spec.env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, spec.env...)
	}
	skip := map[string]bool{}
	for _, m := range spec.mounts {
		t := strings.TrimPrefix(path.Clean(m.Destination), "/")
		p := filepath.Join(mp, t)
		if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, 0, err
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return nil, 0, err
			}
		} else if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, 0, err
		}
		skip[t] = true
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := mountOverlay(rootfs, append(lower, mp), filepath.Join(dir, "upper"), filepath.Join(dir, "work")); err != nil {
		return nil, 0, err
	}
	defer unmount(rootfs)
	id := b.containerID()
	if err := bundle(dir, id, spec); err != nil {
		return nil, 0, err
	}
	b.current = id
	out := &lineWriter{emit: func(s string) {
		b.out(b.prefix + s)
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

func (b *builder) asCaller(fn func() error) error {
	if b.callerDo == nil {
		return fn()
	}
	return b.callerDo(fn)
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
