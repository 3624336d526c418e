package build

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// loadBuilds reads the builds of earlier daemons back from the audit
// stream (build.start, build.step, build.done, build.fail), so that build
// list and build show answer after a restart. A build that started and
// never ended was cut short by the daemon's end: it is "interrupted".
func (m *module) loadBuilds() error {
	it := m.audit.Scan(journal.Query{Kind: "build.*"})
	defer it.Close()
	for it.Next() {
		ev, err := it.Raw().Decode()
		if err != nil {
			m.log.Error("build: a stored build event cannot be read; it is skipped", "seq", it.Raw().Seq, "err", err)
			continue
		}
		id, _ := ev.Data["id"].(string)
		if id == "" {
			continue
		}
		b := m.builds[id]
		if b == nil {
			if ev.Kind != "build.start" {
				continue
			}
			done := make(chan struct{})
			close(done)
			b = &buildRun{ID: id, Started: time.Unix(0, ev.Time).UTC(), done: done, cancel: func() {}, status: "interrupted"}
			b.Context, _ = ev.Data["context"].(string)
			b.File, _ = ev.Data["dockerfile"].(string)
			if p, ok := ev.Data["packer"].(string); ok {
				b.Context = p
				b.File, _ = ev.Data["builder"].(string)
			}
			b.Tags = stringList(ev.Data["tags"])
			m.builds[id] = b
			m.order = append(m.order, id)
			continue
		}
		switch ev.Kind {
		case "build.step":
			s := Step{Instruction: fmt.Sprint(ev.Data["instruction"])}
			s.N = intOf(ev.Data["step"])
			s.Stage, _ = ev.Data["stage"].(string)
			s.Cached, _ = ev.Data["cached"].(bool)
			s.Layer, _ = ev.Data["layer"].(string)
			s.Size = int64(intOf(ev.Data["size"]))
			s.Duration = time.Duration(intOf(ev.Data["duration_ms"])) * time.Millisecond
			s.ExitCode = intOf(ev.Data["exit_code"])
			b.steps = append(b.steps, s)
		case "build.done":
			b.status, b.ended = "done", time.Unix(0, ev.Time).UTC()
			b.image, _ = ev.Data["image"].(string)
			b.digest, _ = ev.Data["digest"].(string)
		case "build.fail":
			b.status, b.ended = "failed", time.Unix(0, ev.Time).UTC()
			if e, _ := ev.Data["error"].(string); e == "canceled" {
				b.status = "canceled"
			}
			b.errText, _ = ev.Data["error"].(string)
		}
	}
	return it.Err()
}

func stringList(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func intOf(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case uint64:
		return int(n)
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}
