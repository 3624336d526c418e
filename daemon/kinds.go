package daemon

import "github.com/cairnhq/cairn/journal"

// Kinds are the event kinds the daemon itself writes (docs/events.md),
// beside its engines' (engines.KindLister); daemonKinds are their
// prefixes, which emit refuses.
func Kinds() []string {
	return []string{"daemon.start", "daemon.stop", journal.CheckpointKind, ImportKind, DenyKind, kindEventFire}
}
