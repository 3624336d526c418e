package logs

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/filter"
)

// An output's buffer is the logs stream itself: the records its route
// marked are durable there before any delivery, and the output keeps
// only a cursor (the last seq delivered, in <data>/logs/outputs/NAME.pos)
// — so a buffered record survives a crash, a peer down for hours costs no
// memory, and delivery is at least once (a crash between a delivery and
// the cursor's save sends that batch again).
const (
	outputBatch   = 1000 // records per delivery at most
	retryFirst    = 500 * time.Millisecond
	retryMax      = 30 * time.Second // back-off doubles up to this
	deliverTimout = 30 * time.Second // a forward peer's ack, a file's write
)

// output delivers one route's records to a file or a forward peer.
type output struct {
	m      *module
	cfg    routeConfig
	kind   string // file, forward
	target string
	match  *filter.Filter

	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	cursor    int64 // the last seq delivered (or skipped)
	delivered int64
	dropped   int64
	failures  int // consecutive failed deliveries
	lastErr   string
	retryAt   time.Time
}

func newOutput(m *module, cfg routeConfig, kind, target string) *output {
	f, err := filter.Compile(fmt.Sprintf("data.route == %s", strconv.Quote(cfg.Name)))
	if err != nil {
		panic(err) // a quoted string always compiles
	}
	return &output{m: m, cfg: cfg, kind: kind, target: target, match: f, done: make(chan struct{})}
}

func (o *output) posPath() string {
	return filepath.Join(o.m.dataDir, "logs", "outputs", o.cfg.Name+".pos")
}

func (o *output) loadCursor() int64 {
	b, err := os.ReadFile(o.posPath())
	if err != nil {
		return o.cfg.From
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return o.cfg.From
	}
	return n
}

// saveCursor writes the cursor durably (write, fsync, rename).
func (o *output) saveCursor(seq int64) error {
	p := o.posPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.FormatInt(seq, 10)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// stop ends the output's delivery and waits for it.
func (o *output) stop() {
	if o.cancel != nil {
		o.cancel()
		<-o.done
	}
}

// queued counts the route's records after the cursor: the output's queue.
func (o *output) queued() int64 {
	o.mu.Lock()
	from := o.cursor + 1
	o.mu.Unlock()
	it := o.m.logs.Scan(journal.Query{From: from, To: o.m.logs.DurableSeq()})
	defer it.Close()
	var n int64
	for it.Next() {
		if o.match.MatchRaw(it.Raw()) {
			n++
		}
	}
	return n
}

// run delivers until ctx ends or stop.
func (o *output) run(ctx context.Context) {
	defer close(o.done)
	o.mu.Lock()
	o.cursor = o.loadCursor()
	o.mu.Unlock()
	for ctx.Err() == nil {
		o.capBacklog()
		batch, last, err := o.next()
		if err != nil {
			o.m.log.Warn("logs output: read the stream", "route", o.cfg.Name, "err", err)
			if !sleepCtx(ctx, retryMax) {
				return
			}
			continue
		}
		if len(batch) == 0 {
			o.setCursor(last, false)
			// Wait for the stream to grow past what was read.
			sub := o.m.logs.Subscribe(ctx, last+1, o.match.MatchRaw)
			_, err := sub.Next(ctx)
			sub.Close()
			if err != nil {
				return
			}
			continue
		}
		// A failed delivery waits its back-off, then the batch is read
		// again: the cap may have moved the cursor past some of it.
		if o.deliverOnce(ctx, batch) {
			o.setCursor(last, true)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// capBacklog skips what is beyond the output's cap (--logs-output-backlog
// seqs of the logs stream behind the cursor), counting it dropped, so a
// peer down for long does not make the daemon resend the whole stream.
func (o *output) capBacklog() {
	durable := o.m.logs.DurableSeq()
	o.mu.Lock()
	behind := durable - o.cursor
	if o.m.outputBacklog <= 0 || behind <= o.m.outputBacklog {
		o.mu.Unlock()
		return
	}
	skip := behind - o.m.outputBacklog
	o.cursor += skip
	o.dropped += skip
	cursor := o.cursor
	o.mu.Unlock()
	o.m.log.Warn("logs output: backlog over its cap, oldest records dropped", "route", o.cfg.Name, "seqs", skip)
	_ = o.saveCursor(cursor)
}

// next reads the route's records after the cursor, at most outputBatch,
// and the last seq read.
func (o *output) next() ([]*journal.Event, int64, error) {
	o.mu.Lock()
	from := o.cursor + 1
	o.mu.Unlock()
	last := o.m.logs.DurableSeq()
	if from > last {
		return nil, last, nil
	}
	it := o.m.logs.Scan(journal.Query{From: from, To: last})
	defer it.Close()
	var batch []*journal.Event
	read := from - 1
	for it.Next() {
		raw := it.Raw()
		read = raw.Seq
		if !o.match.MatchRaw(raw) {
			continue
		}
		ev, err := raw.Decode()
		if err != nil {
			return nil, 0, err
		}
		batch = append(batch, ev)
		if len(batch) >= outputBatch {
			break
		}
	}
	if err := it.Err(); err != nil {
		return nil, 0, err
	}
	if len(batch) < outputBatch {
		read = last
	}
	return batch, read, nil
}

func (o *output) setCursor(seq int64, delivered bool) {
	o.mu.Lock()
	changed := seq != o.cursor
	o.cursor = seq
	o.mu.Unlock()
	if changed && delivered {
		if err := o.saveCursor(seq); err != nil {
			o.m.log.Warn("logs output: save cursor", "route", o.cfg.Name, "err", err)
		}
	}
}

// deliverOnce tries the batch once; on failure it records the failure
// (logs.output.fail at the first) and waits its back-off.
func (o *output) deliverOnce(ctx context.Context, batch []*journal.Event) bool {
	err := o.deliver(ctx, batch)
	o.mu.Lock()
	if err == nil {
		wasFailing := o.failures
		o.failures, o.lastErr, o.retryAt = 0, "", time.Time{}
		o.delivered += int64(len(batch))
		o.mu.Unlock()
		if wasFailing > 0 {
			o.m.recordAudit(ctx, kindOutputRecover, o.cfg.Name, map[string]any{"route": o.cfg.Name, "to": o.cfg.To, "failures": int64(wasFailing)})
		}
		return true
	}
	o.failures++
	n := o.failures
	wait := retryFirst << min(n-1, 10)
	if wait > retryMax {
		wait = retryMax
	}
	o.lastErr = err.Error()
	o.retryAt = time.Now().Add(wait)
	o.mu.Unlock()
	if n == 1 {
		o.m.log.Warn("logs output failing; records stay in the logs stream until it recovers", "route", o.cfg.Name, "to", o.cfg.To, "err", err)
		o.m.recordAudit(ctx, kindOutputFail, o.cfg.Name, map[string]any{"route": o.cfg.Name, "to": o.cfg.To, "error": err.Error()})
	}
	sleepCtx(ctx, wait)
	return false
}

func (o *output) deliver(ctx context.Context, batch []*journal.Event) error {
	switch o.kind {
	case "file":
		return deliverFile(o.target, batch)
	case "forward":
		return deliverForward(ctx, o.target, batch)
	}
	return fmt.Errorf("unknown output %s", o.kind)
}

// deliverFile appends the records as NDJSON ({time, tag, record}, as logs
// -o json prints them) and fsyncs.
func deliverFile(path string, batch []*journal.Event) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, ev := range batch {
		if err := enc.Encode(rowOf(ev)); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// eventTime encodes as Fluentd's EventTime (ext 0: seconds, nanoseconds).
type eventTime time.Time

func (t eventTime) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeExtHeader(0, 8); err != nil {
		return err
	}
	var b [8]byte
	tt := time.Time(t)
	binary.BigEndian.PutUint32(b[:4], uint32(tt.Unix()))
	binary.BigEndian.PutUint32(b[4:], uint32(tt.Nanosecond()))
	_, err := enc.Writer().Write(b[:])
	return err
}

// deliverForward sends the batch as Forward-mode messages (one per tag,
// each with a chunk id) and waits for each ack: at least once, as Fluentd's
// out_forward with require_ack_response.
func deliverForward(ctx context.Context, addr string, batch []*journal.Event) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(deliverTimout))
	var order []string
	byTag := map[string][]any{}
	for _, ev := range batch {
		row := rowOf(ev)
		t, _ := time.Parse(time.RFC3339Nano, row.Time)
		if _, ok := byTag[row.Tag]; !ok {
			order = append(order, row.Tag)
		}
		byTag[row.Tag] = append(byTag[row.Tag], []any{eventTime(t), row.Record})
	}
	dec := msgpack.NewDecoder(bufio.NewReader(conn))
	for _, tag := range order {
		var idb [16]byte
		_, _ = rand.Read(idb[:])
		chunk := base64.StdEncoding.EncodeToString(idb[:])
		msg, err := msgpack.Marshal([]any{tag, byTag[tag], map[string]any{"chunk": chunk, "size": len(byTag[tag])}})
		if err != nil {
			return err
		}
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		var ack map[string]any
		if err := dec.Decode(&ack); err != nil {
			return fmt.Errorf("waiting for the ack: %w", err)
		}
		if ack["ack"] != chunk {
			return errors.New("the peer acked another chunk")
		}
	}
	return nil
}

// state is the output's row of `logs routes`.
func (o *output) state() map[string]any {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := "ok"
	if o.failures > 0 {
		st = "retrying"
	}
	row := map[string]any{"state": st, "delivered": o.delivered, "behind": max(o.m.logs.DurableSeq()-o.cursor, 0),
		"failures": o.failures, "dropped": o.dropped}
	if o.lastErr != "" {
		row["last_error"] = o.lastErr
		row["next_retry"] = o.retryAt.UTC().Format(time.RFC3339)
	}
	return row
}
