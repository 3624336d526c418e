package runtime

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairnhq/cairn/engines/runtime/logtail"
	"github.com/cairnhq/cairn/journal"
)

// outputFiles are the files a container's stdout and stderr go to, in fd
// order.
var outputFiles = [2]string{"stdout.log", "stderr.log"}

var outputNames = [2]string{"stdout", "stderr"}

// offsetsSaveEvery is how often a container's record is saved with its
// output offsets while it writes.
const offsetsSaveEvery = 2 * time.Second

// follow stores the container's output in the logs stream until ctx ends
// and what was written is stored, then closes done. Each batch of lines
// is one append, and each record carries the offset just past its line,
// so a restarted daemon goes on after the last stored line
// (resumeOffsets): nothing lost, nothing stored twice.
func (m *module) follow(ctx context.Context, e *entry, done chan struct{}) {
	defer close(done)
	e.mu.Lock()
	c := e.c
	e.mu.Unlock()
	dir := m.table.dirOf(c.ID)
	var wg sync.WaitGroup
	for fd := range outputFiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.followOne(ctx, e, c, filepath.Join(dir, outputFiles[fd]), fd); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Warn("follow a container's output", "container", c.ID[:12], "stream", outputNames[fd], "err", err)
			}
		}()
	}
	wg.Wait()
}

// followOne stores one output file's lines until ctx ends; when the
// container has ended (not the daemon), it then stores the last line even
// without its newline.
func (m *module) followOne(ctx context.Context, e *entry, c Container, path string, fd int) error {
	t, err := logtail.Open(path, c.Offsets[fd], logtail.Options{})
	if err != nil {
		return err
	}
	defer t.Close()
	emit := func(lines []logtail.Line) error {
		bodies := make([]*journal.Body, len(lines))
		for i, l := range lines {
			data := map[string]any{"stream": outputNames[fd], "line": string(l.Text), "tag": "container." + c.Name, "offset": l.Offset}
			if l.Partial {
				data["partial"] = true
			}
			bodies[i] = &journal.Body{Kind: "container.log", Subject: "container." + c.Name, Node: m.node,
				Actor: journal.SystemActor(), Data: data,
				Container: &journal.Container{ID: shortContainerID(c.ID), Name: c.Name, Image: c.Image}}
		}
		committed, err := m.logs.Append(context.Background(), bodies...)
		if err != nil {
			return err
		}
		end := lines[len(lines)-1].Offset
		e.mu.Lock()
		e.c.Offsets[fd] = end
		if s := committed[len(committed)-1].Seq; s > e.lastLogSeq {
			e.lastLogSeq = s
		}
		// The record keeps the offsets too, every few seconds: a
		// restarted daemon then needs to read back only the last few
		// seconds of the stream (resumeOffsets) to go on exactly.
		var saveErr error
		if time.Since(e.offsetsSaved) > offsetsSaveEvery && !e.removed {
			saveErr = m.table.save(&e.c)
			e.offsetsSaved = time.Now()
		}
		e.mu.Unlock()
		if saveErr != nil {
			m.log.Warn("save a container's log offsets", "container", c.ID[:12], "err", saveErr)
		}
		// Stored: the file's disk behind it can go. A filesystem that
		// cannot punch holes only keeps the disk; storing goes on.
		if err := t.Release(end); err != nil {
			m.log.Debug("free a container's stored output", "container", c.ID[:12], "err", err)
		}
		return nil
	}
	if err := t.Follow(ctx, emit); err != nil {
		return err
	}
	if m.ctx.Err() == nil {
		if _, err := t.Drain(emit); err != nil {
			return err
		}
	}
	return nil
}

// resumeOffsets sets each container's output offsets from its last
// records in the logs stream, which may be ahead of its record's: a daemon
// killed between storing a batch and saving the offset would otherwise
// store the batch twice. One reverse pass serves every container, reading
// back at most a bounded number of records.
func (m *module) resumeOffsets(list []Container) {
	const maxBack = 200000
	byShort := make(map[string]*Container, len(list))
	for i := range list {
		byShort[shortContainerID(list[i].ID)] = &list[i]
	}
	found := map[string]*[2]bool{}
	want := 2 * len(list)
	it := m.logs.Scan(journal.Query{Kind: "container.log", Reverse: true})
	defer it.Close()
	for n := 0; n < maxBack && want > 0 && it.Next(); n++ {
		ev, err := it.Raw().Decode()
		if err != nil || ev.Container == nil {
			continue
		}
		c := byShort[ev.Container.ID]
		if c == nil {
			continue
		}
		fd := 0
		if s, _ := ev.Data["stream"].(string); s == "stderr" {
			fd = 1
		}
		f := found[ev.Container.ID]
		if f == nil {
			f = &[2]bool{}
			found[ev.Container.ID] = f
		}
		if f[fd] {
			continue
		}
		f[fd] = true
		want--
		if off, ok := toInt64(ev.Data["offset"]); ok && off > c.Offsets[fd] {
			c.Offsets[fd] = off
		}
	}
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return int64(n), true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}
