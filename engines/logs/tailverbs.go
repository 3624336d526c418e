package logs

import (
	"context"
	"path/filepath"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

func (m *module) tailVerbs() []engines.Verb {
	return []engines.Verb{
		{Spec: dsl.Spec{
			Verb:    "logs tail add",
			Access:  dsl.AccessHost,
			Summary: "follow a file's lines into the logs stream, as Fluentd's in_tail",
			Help: "logs tail add PATH tag=TAG [format=none|json|regexp:'RE'] [pos=start|end] follows PATH across\n" +
				"rotation by rename and by copytruncate; each line is a record ({message} with format=none,\n" +
				"the object with json, the named groups with regexp). pos= says where a file never read\n" +
				"starts (end, as in_tail, unless pos=start); a restarted daemon resumes after the last line\n" +
				"stored.\n\n  logs tail add /var/log/nginx/access.log tag=nginx.access pos=start",
			Args: []dsl.Arg{{Name: "PATH", Required: true, Help: "an absolute path"}},
			Options: []dsl.Option{{Name: "tag", Meta: "TAG", Help: "the records' tag"},
				{Name: "format", Meta: "none|json|regexp:RE"}, {Name: "pos", Meta: "start|end"}},
		}, Run: m.runTailAdd},
		{Spec: dsl.Spec{
			Verb:    "logs tail ls",
			Access:  dsl.AccessRead,
			Summary: "the files followed: path, tag, format and pos",
		}, Run: m.runTailLs},
		{Spec: dsl.Spec{
			Verb:    "logs tail rm",
			Access:  dsl.AccessHost,
			Summary: "stop following a file",
			Args:    []dsl.Arg{{Name: "PATH", Required: true}},
		}, Run: m.runTailRm},
	}
}

func (m *module) runTailAdd(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	pw := st.Args["PATH"]
	if !filepath.IsAbs(pw.Text) {
		return engines.Errorf(wire.InvalidArgument, pw, "%s: give an absolute path", pw.Text)
	}
	cfg := tailConfig{Path: filepath.Clean(pw.Text), Pos: "end", Format: "none"}
	tw, ok := st.Opt("tag")
	if !ok || tw.Text == "" {
		return engines.Errorf(wire.InvalidArgument, pw, "give the records' tag: tag=TAG")
	}
	cfg.Tag = tw.Text
	if w, ok := st.Opt("format"); ok {
		if _, err := parseLineFormat(w.Text); err != nil {
			return engines.Errorf(wire.InvalidArgument, w, "%v", err)
		}
		cfg.Format = w.Text
	}
	if w, ok := st.Opt("pos"); ok {
		if w.Text != "start" && w.Text != "end" {
			return engines.Errorf(wire.InvalidArgument, w, "pos=%s: give start or end", w.Text)
		}
		cfg.Pos = w.Text
	}
	m.tailMu.Lock()
	defer m.tailMu.Unlock()
	m.mu.Lock()
	_, dup := m.tails[cfg.Path]
	m.mu.Unlock()
	if dup {
		return engines.Errorf(wire.AlreadyExists, pw, "%s is already followed (logs tail rm it first)", cfg.Path)
	}
	if _, err := m.audit.Append(ctx, &journal.Body{Kind: kindTailAdd, Subject: cfg.Path, Node: m.node, Actor: r.Actor(),
		Data: map[string]any{"path": cfg.Path, "tag": cfg.Tag, "format": cfg.Format, "pos": cfg.Pos}}); err != nil {
		return err
	}
	if err := m.startTail(m.ctx, cfg, tailPos{}, false); err != nil {
		return err
	}
	return r.Row(cfg)
}

func (m *module) runTailRm(ctx context.Context, r engines.Request) error {
	pw := r.Statement().Args["PATH"]
	path := filepath.Clean(pw.Text)
	m.tailMu.Lock()
	defer m.tailMu.Unlock()
	m.mu.Lock()
	_, ok := m.tails[path]
	m.mu.Unlock()
	if !ok {
		return engines.Errorf(wire.NotFound, pw, "%s is not followed", pw.Text)
	}
	if _, err := m.audit.Append(ctx, &journal.Body{Kind: kindTailRm, Subject: path, Node: m.node, Actor: r.Actor(),
		Data: map[string]any{"path": path}}); err != nil {
		return err
	}
	m.stopTail(path)
	return nil
}

func (m *module) runTailLs(ctx context.Context, r engines.Request) error {
	for _, cfg := range m.tailList() {
		if err := r.Row(cfg); err != nil {
			return err
		}
	}
	return nil
}
