package logs

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/journal"
)

// TestForwardIdleConnectionsHoldNoBuffers: connections that each sent a
// large PackedForward message and now wait for their next one hold no
// message buffers, so the forward input's memory follows the messages in
// flight (at most forwardInFlight), not the connections open.
func TestForwardIdleConnectionsHoldNoBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("heap figures are pebble's too under the race detector")
	}
	quiet := slog.New(slog.DiscardHandler)
	j, err := journal.Open(journal.Options{Dir: t.TempDir(), Logger: quiet,
		Streams: []journal.StreamSpec{{Name: Stream, Class: journal.CaptureLike}}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m := newModule()
	m.log, m.node, m.logs, m.maxFrame = quiet, "test", j.Stream(Stream), defaultMaxFrame

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serveForward(ctx, c)
		}
	}()
	defer ln.Close()

	// One PackedForward message of 4,000 records of about 1 KiB: its
	// packed bytes and its records' CBOR take ≈ 9 MiB while it is stored.
	var packed []byte
	for i := range 4000 {
		e, err := msgpack.Marshal([]any{time.Now().Unix(), map[string]any{"i": i, "msg": strings.Repeat("x", 1000)}})
		if err != nil {
			t.Fatal(err)
		}
		packed = append(packed, e...)
	}
	send := func(c net.Conn, r *bufio.Reader, chunk string) {
		t.Helper()
		msg, err := msgpack.Marshal([]any{"mem.test", packed, map[string]any{"chunk": chunk}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		var ack map[string]string
		if err := msgpack.NewDecoder(r).Decode(&ack); err != nil || ack["ack"] != chunk {
			t.Fatalf("ack %v, %v; want %s", ack, err, chunk)
		}
	}
	// A first message, on a connection closed after it, leaves the
	// journal's own buffers at their working size before the baseline.
	warm, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	send(warm, bufio.NewReader(warm), "warm")
	warm.Close()
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // a sync.Pool is emptied over two collections
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()

	const conns = 16
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(c, bufio.NewReader(c), fmt.Sprint("c", i))
	}
	// All 16 are open and idle, each waiting for its next message.
	if held := heap() - before; held > 32<<20 {
		t.Fatalf("%d idle forward connections hold %d MiB of heap after their messages, want under 32 MiB (kept per connection, they would hold ≈ %d MiB)",
			conns, held>>20, conns*9)
	}
	if got := len(m.fwdBufs.slots); got != 0 {
		t.Errorf("%d forward slots taken with every connection idle, want 0", got)
	}
}

// TestBufPoolSlots: the forward input lends at most forwardInFlight
// messages' buffers at once; one more waits for a slot, and gives up when
// its connection's context ends.
func TestBufPoolSlots(t *testing.T) {
	p := newBufPool(2)
	ctx := context.Background()
	a, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.get(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := p.get(ctx)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a third get returned (%v) with both slots taken", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.packed = make([]byte, maxKeptBuf+1) // too large to keep
	p.put(a)
	if err := <-got; err != nil {
		t.Fatalf("get after a put: %v", err)
	}
	if b := p.pool.Get().(*forwardBufs); cap(b.packed) > maxKeptBuf {
		t.Errorf("the pool kept a %d-byte buffer, over maxKeptBuf", cap(b.packed))
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.get(done); err == nil {
		t.Error("get with every slot taken and its context ended succeeded")
	}
}
