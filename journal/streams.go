package journal

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// StreamClass says how a stream keeps its events.
type StreamClass int

const (
	// AuditLike is a stream of changes, as audit is: never pruned, indexed
	// by subject and by kind, pebble tuned for the projection reads of the
	// engines that fold it.
	AuditLike StreamClass = iota
	// CaptureLike is a stream of observations, as capture is: high volume,
	// pruned by its Retention a whole range at a time with a checkpoint
	// event, indexed by kind only, and held to the higher free-space floor
	// (Options.CaptureReserve) so that it stops first when the disk fills.
	CaptureLike
)

func (c StreamClass) String() string {
	switch c {
	case AuditLike:
		return "audit-like"
	case CaptureLike:
		return "capture-like"
	}
	return fmt.Sprintf("StreamClass(%d)", int(c))
}

// StreamSpec declares one stream of a journal. audit (AuditLike) and
// capture (CaptureLike, kept by Options.Retention) are built in; a module
// that needs a stream of its own (the logs engine's "logs") declares it in
// Options.Streams.
type StreamSpec struct {
	// Name is the stream's name, [a-z0-9_]+: the stream= of reads, the
	// second word of its NATS subjects and its directory under Dir.
	Name  string
	Class StreamClass
	// Retention bounds a CaptureLike stream; zero keeps everything. An
	// AuditLike stream is never pruned and must leave it zero.
	Retention Retention
}

// streamSpecs returns the streams opts asks for: the built-in two, then
// opts.Streams sorted by name, checked.
func streamSpecs(opts Options) ([]StreamSpec, error) {
	specs := []StreamSpec{
		{Name: Audit, Class: AuditLike},
		{Name: Capture, Class: CaptureLike, Retention: opts.Retention},
	}
	extra := slices.Clone(opts.Streams)
	slices.SortFunc(extra, func(a, b StreamSpec) int { return cmp.Compare(a.Name, b.Name) })
	for _, sp := range extra {
		if !validEngineName(sp.Name) {
			return nil, fmt.Errorf("stream name %q: want [a-z0-9_]+", sp.Name)
		}
		if slices.ContainsFunc(specs, func(o StreamSpec) bool { return o.Name == sp.Name }) {
			return nil, fmt.Errorf("stream %q declared twice", sp.Name)
		}
		switch sp.Class {
		case AuditLike:
			if sp.Retention != (Retention{}) {
				return nil, fmt.Errorf("stream %q: an audit-like stream is never pruned; declare it capture-like to give it a retention", sp.Name)
			}
		case CaptureLike:
		default:
			return nil, fmt.Errorf("stream %q: unknown class %v", sp.Name, sp.Class)
		}
		specs = append(specs, sp)
	}
	for i := range specs {
		if specs[i].Retention.Every == 0 {
			specs[i].Retention.Every = time.Minute
		}
	}
	return specs, nil
}

// Names returns the journal's stream names: audit, capture, then the
// declared ones by name.
func (j *Journal) Names() []string {
	names := make([]string, len(j.specs))
	for i, sp := range j.specs {
		names[i] = sp.Name
	}
	return names
}

// Class returns how the stream keeps its events.
func (s *Stream) Class() StreamClass { return s.spec.Class }
