package capture

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// TraceSource is the name under which traced events are counted in
// `capture status`. The source itself runs in the CLI (capture run), so
// `capture start trace` refuses and says so.
const TraceSource = "trace"

// MaxIngestBatch is the most encoded bytes one `capture ingest` carries
// (before base64), so a request line stays well under the 4 MiB limit.
const MaxIngestBatch = 2 << 20

func init() { RegisterSource(TraceSource, func() Source { return traceSource{} }) }

// traceSource is the registry entry of the trace source: it exists so that
// `capture sources` and `capture status` show it.
type traceSource struct{}

func (traceSource) Description() string {
	return "syscalls of one command traced by the CLI (cairn capture run -- CMD), like strace -f"
}

func (traceSource) Start(context.Context, SourceConfig, Emit) error {
	return errors.New("the trace source runs in the CLI, as your user: cairn capture run [where 'CEL'] -- CMD ARGS…")
}

func (traceSource) Stop() error { return nil }

// EncodeTraceBatch encodes bodies for `capture ingest events=…`: each
// body's deterministic CBOR, prefixed by its length (4 bytes, big endian),
// the whole in standard base64.
func EncodeTraceBatch(bodies []*journal.Body) (string, error) {
	var raw []byte
	for _, b := range bodies {
		var err error
		if raw, err = AppendTraceEvent(raw, b); err != nil {
			return "", err
		}
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// AppendTraceEvent appends one body to a batch being built (before
// base64), so that a sender can cut batches at MaxIngestBatch.
func AppendTraceEvent(raw []byte, b *journal.Body) ([]byte, error) {
	enc, err := journal.EncodeBody(b)
	if err != nil {
		return raw, fmt.Errorf("encode %s: %w", b.Kind, err)
	}
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(enc)))
	return append(raw, enc...), nil
}

// DecodeTraceBatch decodes what EncodeTraceBatch encodes. Only capture
// kinds are accepted: ingest cannot write other engines' events.
func DecodeTraceBatch(s string) ([]*journal.Body, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("events=: not base64: %w", err)
	}
	if len(raw) > MaxIngestBatch {
		return nil, fmt.Errorf("events=: %d bytes, the most one request carries is %d", len(raw), MaxIngestBatch)
	}
	var out []*journal.Body
	for len(raw) > 0 {
		if len(raw) < 4 {
			return nil, errors.New("events=: truncated length")
		}
		n := binary.BigEndian.Uint32(raw)
		raw = raw[4:]
		if uint64(n) > uint64(len(raw)) {
			return nil, errors.New("events=: truncated event")
		}
		b, err := journal.DecodeBody(raw[:n])
		if err != nil {
			return nil, fmt.Errorf("events=: event %d: %w", len(out)+1, err)
		}
		raw = raw[n:]
		if err := journal.ValidateKind(b.Kind); err != nil {
			return nil, fmt.Errorf("events=: event %d: %w", len(out)+1, err)
		}
		if !strings.HasPrefix(b.Kind, "capture.") || b.Kind == DropKind {
			return nil, fmt.Errorf("events=: event %d: kind %s is not a capture observation", len(out)+1, b.Kind)
		}
		out = append(out, &b)
	}
	if len(out) == 0 {
		return nil, errors.New("events=: no events")
	}
	return out, nil
}

// Ingest appends bodies sent by a client (capture run) to the capture
// stream through the pipeline's buffer, counted under the trace source,
// and returns once they are stored. Unlike a source's Emit it waits for
// room instead of dropping: the client is the tracer, and slowing it slows
// the traced command, as strace does, instead of losing its syscalls.
func (p *Pipeline) Ingest(ctx context.Context, actor journal.Actor, bodies []*journal.Body) error {
	if err := checkIngested(actor, bodies, procUID); err != nil {
		return err
	}
	p.mu.Lock()
	r := p.runs[TraceSource]
	if r == nil {
		r = &run{name: TraceSource, src: traceSource{}, lastTick: time.Now(), ready: make(chan struct{})}
		close(r.ready)
		p.runs[TraceSource] = r
	}
	p.mu.Unlock()
	for _, b := range bodies {
		b.Actor = actor
		if actor.UID != 0 {
			// A non-root tracer traces its own command: ptrace ignores
			// set-user-ID bits, so the user is the caller, whatever the
			// client says.
			b.User = &journal.User{UID: int64(actor.UID), Name: actor.User}
		}
		if b.Proc != nil && b.Container == nil {
			b.Container = &journal.Container{ID: "host"}
		}
		select {
		case p.buf <- item{run: r, body: b}:
			r.events.Add(1)
		case <-p.quit:
			return journal.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.Flush(ctx)
}

// checkIngested refuses, from a non-root client, an event that names a
// live process owned by another user: a tracer sees only the processes it
// started, which run as the caller. A process that has exited cannot be
// checked and is taken as reported (its user is the caller's anyway).
func checkIngested(actor journal.Actor, bodies []*journal.Body, uidOf func(pid int64) (int, bool)) error {
	if actor.UID == 0 {
		return nil
	}
	for i, b := range bodies {
		if b.Proc == nil || b.Proc.PID <= 0 {
			continue
		}
		if uid, alive := uidOf(b.Proc.PID); alive && uid != actor.UID {
			return wire.Errorf(wire.PermissionDenied,
				"events=: event %d names pid %d, a process of uid %d; uid %d can ingest only what it traced (cairn capture run)",
				i+1, b.Proc.PID, uid, actor.UID)
		}
	}
	return nil
}

// procUID reads the real uid of a live process from /proc.
func procUID(pid int64) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if uid, err := strconv.Atoi(f[0]); err == nil {
					return uid, true
				}
			}
		}
	}
	return 0, false
}
