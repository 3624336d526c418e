package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// KindRepair records, on the audit stream, what `cairn journal repair`
// did to a stream whose write-ahead log was damaged.
const KindRepair = "journal.repair"

// RepairJournal runs journal.Repair on the data directory of a stopped
// daemon (it takes the daemon's lock, so it refuses while one runs), then
// records each repaired stream as a journal.repair event by actor, so the
// cut and what was set aside stay in the history.
func RepairJournal(dataDir string, actor journal.Actor, mods []engines.Module, log *slog.Logger) ([]journal.RepairReport, error) {
	if _, err := os.Stat(dataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	reps, err := journal.Repair(dataDir, time.Now(), log)
	if err != nil {
		return reps, err
	}
	var bodies []*journal.Body
	for _, r := range reps {
		if r.Status != journal.RepairRepaired {
			continue
		}
		moved := make([]any, len(r.Moved))
		for i, m := range r.Moved {
			moved[i] = m
		}
		bodies = append(bodies, &journal.Body{Kind: KindRepair, Subject: r.Stream, Actor: actor, Data: map[string]any{
			"stream": r.Stream, "wal": r.WAL, "offset": r.Offset, "kept_batches": int64(r.Kept),
			"moved": moved, "lost_found": r.LostFound, "detail": r.Detail,
		}})
	}
	if len(bodies) == 0 {
		return reps, nil
	}
	var streams []journal.StreamSpec
	for _, m := range mods {
		if sd, ok := m.(engines.StreamDeclarer); ok {
			streams = append(streams, sd.Streams()...)
		}
	}
	key, err := journal.LoadNodeKey(dataDir)
	if err != nil {
		return reps, err
	}
	node, _ := os.Hostname()
	j, err := journal.Open(journal.Options{Signing: journal.Signing{Key: key}, Dir: dataDir, Node: node, Logger: log, Streams: streams})
	if err != nil {
		return reps, fmt.Errorf("open the repaired journal: %w", err)
	}
	for _, b := range bodies {
		b.Node = node
	}
	_, err = j.Stream(journal.Audit).Append(context.Background(), bodies...)
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return reps, fmt.Errorf("record the repair: %w", err)
	}
	return reps, nil
}
