package daemon

import "github.com/cairnhq/cairn/journal"

// Kinds are the event kinds the daemon itself writes (docs/events.md),
// beside its engines' (engines.KindLister); their prefixes (daemonKinds)
// are what emit refuses as the daemon's.
func Kinds() []string {
	return []string{"daemon.start", "daemon.stop", journal.CheckpointKind, ImportKind, KindRepair, DenyKind, kindEventFire}
}
