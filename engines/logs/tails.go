package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/cairnhq/cairn/journal"
)

// tailRun is a running follower and what stops it.
type tailRun struct {
	cfg    tailConfig
	cancel context.CancelFunc
	done   chan struct{}
	fl     *follower
}

// loadTails reads the tails configured (logs.tail.add and logs.tail.rm in
// the audit stream, in order) and where each was (the last record of each
// path in the logs stream), and starts them.
func (m *module) loadTails(ctx context.Context) error {
	cfgs := map[string]tailConfig{}
	it := m.audit.Scan(journal.Query{Kind: "logs.tail.*"})
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			// A damaged event (journal verify names it) loses its own
			// change only.
			m.log.Error("logs: a stored tail change cannot be read; it is skipped", "seq", it.Raw().Seq, "err", err)
			continue
		}
		cfg, err := tailConfigOf(ev.Data)
		if err != nil {
			continue
		}
		switch ev.Kind {
		case kindTailAdd:
			cfgs[cfg.Path] = cfg
		case kindTailRm:
			delete(cfgs, cfg.Path)
		}
	}
	if err := it.Err(); err != nil {
		it.Close()
		return err
	}
	it.Close()
	positions := m.tailPositions(cfgs)
	for _, cfg := range cfgs {
		pos, known := positions[cfg.Path]
		if err := m.startTail(ctx, cfg, pos, known); err != nil {
			m.log.Warn("tail", "path", cfg.Path, "err", err)
		}
	}
	return nil
}

// tailPositions finds each path's last stored record, in one reverse pass
// over the logs stream that stops when every path is found (or after a
// bounded number of records: a tail silent for longer starts over at its
// pos=).
func (m *module) tailPositions(cfgs map[string]tailConfig) map[string]tailPos {
	const maxBack = 1000000
	found := map[string]tailPos{}
	if len(cfgs) == 0 {
		return found
	}
	it := m.logs.Scan(journal.Query{Kind: RecordKind, Reverse: true})
	defer it.Close()
	for n := 0; n < maxBack && len(found) < len(cfgs) && it.Next(); n++ {
		ev, err := it.Raw().Decode()
		if err != nil {
			continue
		}
		src, _ := ev.Data["source"].(map[string]any)
		if src == nil || src["input"] != "tail" {
			continue
		}
		path, _ := src["path"].(string)
		if _, want := cfgs[path]; !want {
			continue
		}
		if _, done := found[path]; done {
			continue
		}
		ino, _ := toInt64(src["ino"])
		off, _ := toInt64(src["offset"])
		found[path] = tailPos{ino: uint64(ino), offset: off}
	}
	return found
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

func tailConfigOf(data map[string]any) (tailConfig, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return tailConfig{}, err
	}
	var cfg tailConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return tailConfig{}, err
	}
	if cfg.Path == "" {
		return tailConfig{}, fmt.Errorf("a tail without a path")
	}
	return cfg, nil
}

func (m *module) startTail(ctx context.Context, cfg tailConfig, pos tailPos, known bool) error {
	format, err := parseLineFormat(cfg.Format)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(cfg.Path) {
		return fmt.Errorf("path %s is not absolute", cfg.Path)
	}
	tctx, cancel := context.WithCancel(ctx)
	run := &tailRun{cfg: cfg, cancel: cancel, done: make(chan struct{}),
		fl: &follower{m: m, cfg: cfg, format: format, pos: pos, known: known}}
	m.mu.Lock()
	if m.tails == nil {
		m.tails = map[string]*tailRun{}
	}
	m.tails[cfg.Path] = run
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(run.done)
		run.fl.run(tctx)
	}()
	return nil
}

// stopTail stops the follower of path and waits for it.
func (m *module) stopTail(path string) bool {
	m.mu.Lock()
	run := m.tails[path]
	delete(m.tails, path)
	m.mu.Unlock()
	if run == nil {
		return false
	}
	run.cancel()
	<-run.done
	return true
}

// tailList is the configured tails, sorted by path.
func (m *module) tailList() []tailConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]tailConfig, 0, len(m.tails))
	for _, r := range m.tails {
		out = append(out, r.cfg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
