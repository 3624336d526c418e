package daemon

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// runEmit records an event by hand in the audit stream.
func (s *Server) runEmit(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	kind := st.Args["KIND"]
	if err := journal.ValidateKind(kind.Text); err != nil {
		return &engines.PosError{Code: wire.InvalidArgument, Pos: kind.Pos, Msg: err.Error()}
	}
	if owner, ok := s.reservedBy(kind.Text); ok {
		return engines.Errorf(wire.InvalidArgument, kind, "kind %s belongs to %s: only it writes those events, so its state stays their fold; emit records kinds of your own, such as app.note", kind.Text, owner)
	}
	body := &journal.Body{Kind: kind.Text, Subject: st.Args["SUBJECT"].Text, Actor: r.Actor()}
	if len(st.Bag) > 0 {
		body.Data = make(map[string]any, len(st.Bag))
		for _, kv := range st.Bag {
			body.Data[kv.Key] = kv.Value.Scalar()
		}
	}
	c, err := s.journal.Stream(journal.Audit).Append(ctx, body)
	if err != nil {
		return err
	}
	return r.Row(appendRow{
		Stream: journal.Audit,
		Seq:    c[0].Seq,
		Time:   time.Unix(0, c[0].Time).UTC().Format(time.RFC3339Nano),
		Hash:   c[0].Hash.String(),
	})
}

// appendRow answers a recorded event.
type appendRow struct {
	Stream string `json:"stream"`
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
	Hash   string `json:"hash"`
}

// streamsOpt returns the streams a stream= option selects (default: all).
func (s *Server) streamsOpt(r engines.Request) ([]string, error) {
	w, ok := r.Statement().Opt("stream")
	if !ok {
		return s.journal.Names(), nil
	}
	if s.journal.Stream(w.Text) == nil {
		return nil, &engines.PosError{Code: wire.InvalidArgument, Pos: w.Pos, Msg: fmt.Sprintf("unknown stream %q; streams are %s", w.Text, strings.Join(s.journal.Names(), ", "))}
	}
	return []string{w.Text}, nil
}

// runJournalVerify recomputes each stream's chain.
func (s *Server) runJournalVerify(ctx context.Context, r engines.Request) error {
	names, err := s.streamsOpt(r)
	if err != nil {
		return err
	}
	var bad []string
	for _, name := range names {
		rep, err := s.journal.Stream(name).Verify(ctx)
		if err != nil {
			return fmt.Errorf("verify %s: %w", name, err)
		}
		row := verifyRow{Stream: name, OK: rep.BadSeq == 0, First: rep.First, Last: rep.Last, Events: rep.Events, BadSeq: rep.BadSeq, Problem: rep.Problem,
			SignedTo: rep.SignedSeq, SignedBy: rep.SignedBy, Signatures: rep.Signatures}
		if pub := s.journal.PublicKey(); pub != nil {
			row.NodeKey = journal.Fingerprint(pub)
		}
		if rep.BadSeq != 0 {
			bad = append(bad, fmt.Sprintf("%s: first bad seq %d: %s", name, rep.BadSeq, rep.Problem))
		}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return wire.Errorf(wire.DataLoss, "journal verification failed: %s", strings.Join(bad, "; "))
	}
	return nil
}

// verifyRow answers one stream's verification.
type verifyRow struct {
	Stream  string `json:"stream"`
	OK      bool   `json:"ok"`
	First   int64  `json:"first"`
	Last    int64  `json:"last"`
	Events  int64  `json:"events"`
	BadSeq  int64  `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
	// SignedTo is the last seq whose head carries a valid signature, by
	// the key SignedBy (a fingerprint); NodeKey is this node's key.
	SignedTo   int64  `json:"signed_to"`
	SignedBy   string `json:"signed_by,omitempty"`
	Signatures int64  `json:"signatures"`
	NodeKey    string `json:"node_key,omitempty"`
}

// statsRow answers one stream's extent and size.
type statsRow struct {
	Stream   string `json:"stream"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Events   int64  `json:"events"`
	Bytes    int64  `json:"bytes"`
}

// runJournalStats shows each stream's extent and size.
func (s *Server) runJournalStats(ctx context.Context, r engines.Request) error {
	names, err := s.streamsOpt(r)
	if err != nil {
		return err
	}
	for _, name := range names {
		st := s.journal.Stream(name).Stats()
		if err := r.Row(statsRow{Stream: name, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Events: st.Events, Bytes: st.Bytes}); err != nil {
			return err
		}
	}
	return nil
}

// runJournalRebuild refolds every engine projection.
func (s *Server) runJournalRebuild(ctx context.Context, r engines.Request) error {
	for _, name := range s.journal.Names() {
		stream := s.journal.Stream(name)
		before, _, err := stream.ProjectionDigest(ctx)
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", name, err)
		}
		start := time.Now()
		if err := stream.Rebuild(ctx); err != nil {
			return fmt.Errorf("rebuild %s: %w", name, err)
		}
		took := time.Since(start)
		after, keys, err := stream.ProjectionDigest(ctx)
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", name, err)
		}
		st := stream.Stats()
		row := rebuildRow{Stream: name, Events: st.Events, Took: took.String(), Keys: keys, Before: before.String(), After: after.String(), Same: before == after}
		if err := r.Row(row); err != nil {
			return err
		}
	}
	return nil
}

// rebuildRow answers one stream's rebuild.
type rebuildRow struct {
	Stream string `json:"stream"`
	Events int64  `json:"events"`
	Took   string `json:"took"`
	Keys   int64  `json:"keys"`   // projection keys after the rebuild
	Before string `json:"before"` // projection digest folded live
	After  string `json:"after"`  // projection digest refolded
	Same   bool   `json:"same"`   // the two are equal, as they must be
}

// runStatus describes the daemon.
func (s *Server) runStatus(ctx context.Context, r engines.Request) error {
	info := func(name string) wire.StreamInfo {
		st := s.journal.Stream(name).Stats()
		return wire.StreamInfo{LastSeq: st.LastSeq, Events: st.Events, Bytes: st.Bytes}
	}
	var more map[string]wire.StreamInfo
	for _, name := range s.journal.Names() {
		if name != journal.Audit && name != journal.Capture {
			if more == nil {
				more = map[string]wire.StreamInfo{}
			}
			more[name] = info(name)
		}
	}
	listeners := map[string]string{"socket": s.cfg.Socket, "nats": s.natsURL(), "http": s.httpAddr()}
	for _, m := range s.cfg.Modules {
		if lr, ok := m.(engines.ListenerReporter); ok {
			for name, addr := range lr.Listeners() {
				listeners[name] = addr
			}
		}
	}
	return r.Row(wire.StatusRow{
		Listeners: listeners,
		Node:      s.node,
		Version:   Version,
		PID:       os.Getpid(),
		Uptime:    time.Since(s.started).Round(time.Millisecond).String(),
		NATS:      s.natsURL(),
		HTTP:      s.httpAddr(),
		Socket:    s.cfg.Socket,
		Data:      s.cfg.DataDir,
		Audit:     info(journal.Audit),
		Capture:   info(journal.Capture),
		Streams:   more,
	})
}

// runHelp lists the verb table, or explains one verb.
func (s *Server) runHelp(ctx context.Context, r engines.Request) error {
	if len(r.Statement().Rest) > 0 || r.Statement().Args["VERB"].Text != "" {
		words := []string{}
		if w := r.Statement().Args["VERB"].Text; w != "" {
			words = append(words, w)
		}
		for _, w := range r.Statement().Rest {
			words = append(words, w.Text)
		}
		text, err := s.verbs.HelpVerb(strings.Join(words, " "))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if err := r.Line(line); err != nil {
				return err
			}
		}
		return nil
	}
	for _, sp := range s.verbs.Specs() {
		if err := r.Row(wire.HelpRow{Verb: sp.Verb, Usage: s.verbs.Usage(sp), Summary: sp.Summary}); err != nil {
			return err
		}
	}
	return nil
}

// daemonKinds are the kind prefixes the daemon itself writes: the first
// words of Kinds.
var daemonKinds = sync.OnceValue(func() []string {
	var out []string
	for _, k := range Kinds() {
		p := k[:strings.IndexByte(k, '.')+1]
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
})

// reservedBy reports which part of cairn owns kind: the daemon, or an
// engine (engines.KindOwner).
func (s *Server) reservedBy(kind string) (string, bool) {
	for _, p := range daemonKinds() {
		if strings.HasPrefix(kind, p) {
			return "the daemon", true
		}
	}
	if owner, ok := engines.ReservedBy(s.cfg.Modules, kind); ok {
		return "the " + owner + " engine", true
	}
	return "", false
}
