package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cairnhq/cairn/internal/peercred"
	"github.com/cairnhq/cairn/journal"
)

// startForward listens for Fluentd's forward protocol on addr (TCP) and
// answers heartbeats on the same port (UDP), as in_forward does.
func (m *module) startForward(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The heartbeat listens on the TCP listener's port; with port 0 that
	// port may be taken for UDP, so try a few TCP ports then.
	var pc net.PacketConn
	for try := 0; ; try++ {
		pc, err = net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			break
		}
		_, port, _ := net.SplitHostPort(addr)
		if port != "0" || try == 5 {
			ln.Close()
			return err
		}
		ln.Close()
		if ln, err = net.Listen("tcp", addr); err != nil {
			return err
		}
	}
	m.addListener("forward", ln.Addr().String(), func() error {
		pc.Close()
		return ln.Close()
	})
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.heartbeat(pc)
	}()
	go func() {
		defer m.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					m.log.Warn("forward: accept", "err", err)
				}
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.serveForward(ctx, conn)
			}()
		}
	}()
	return nil
}

// heartbeat answers every UDP datagram with one byte, as Fluentd's
// in_forward does for out_forward's heartbeat_type udp.
func (m *module) heartbeat(pc net.PacketConn) {
	buf := make([]byte, 512)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		m.stats.add("forward", "heartbeats", 1)
		_, _ = pc.WriteTo([]byte{0}, from)
	}
}

// serveForward reads forward messages from one connection until it ends.
// Records of a message are stored in one append; a message with a chunk
// option is acked only once that append returned, that is once they are
// durable. Invalid msgpack or a message beyond the frame limit is counted
// and closes the connection (the stream cannot be resynchronized); an
// entry whose record is not a map is counted and skipped.
func (m *module) serveForward(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	addr := conn.RemoteAddr().String()
	// The peer's uid, for a loopback client, as the kernel knows it.
	actor := peercred.TCPActor(conn.LocalAddr(), conn.RemoteAddr(), "forward")
	lr := &limitReader{r: bufio.NewReaderSize(conn, 64<<10), max: m.maxFrame}
	dec := msgpack.NewDecoder(lr)
	m.stats.add("forward", "connections", 1)
	var jdec *json.Decoder // set once the client sends JSON (fluent-logger's MarshalAsJSON)
	for {
		lr.n = 0
		first, err := lr.Peek(1)
		if err != nil {
			return // the client closed, or the daemon stops
		}
		// A msgpack message is an array, never the fixint 0x5b: '[' is
		// JSON, as Fluentd's in_forward tells them apart. A JSON client
		// stays JSON (its decoder reads ahead).
		if jdec == nil && first[0] == '[' {
			jdec = json.NewDecoder(lr)
			jdec.UseNumber()
		}
		if !m.forwardMessage(ctx, conn, lr, dec, jdec, actor, addr) {
			return
		}
	}
}

// forwardMessage reads, stores and acks one message, in one of the
// input's slots and with buffers lent for it; it reports whether the
// connection goes on.
func (m *module) forwardMessage(ctx context.Context, conn net.Conn, lr *limitReader, dec *msgpack.Decoder, jdec *json.Decoder, actor journal.Actor, addr string) bool {
	bufs, err := m.fwdBufs.get(ctx)
	if err != nil {
		return false
	}
	journalMayRead := false // after a failed store: a request whose context ended may still be committed
	defer func() {
		if journalMayRead {
			m.fwdBufs.drop()
		} else {
			m.fwdBufs.put(bufs)
		}
	}()
	var fm forwardMsg
	if jdec != nil {
		fm, err = decodeForwardJSON(jdec)
	} else {
		fm, err = decodeForward(dec, bufs)
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		reason := "invalid_msgpack"
		if jdec != nil {
			reason = "invalid_json"
		}
		if errors.Is(err, errFrameTooLarge) {
			reason = "frame_too_large"
		} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
			reason = "truncated"
		}
		m.stats.add("forward", reason, 1)
		m.log.Info("forward: bad input, connection closed", "peer", addr, "reason", reason, "err", err, "read", lr.n)
		return false
	}
	m.stats.add("forward", "messages", 1)
	m.stats.add("forward", "mode_"+fm.mode, 1)
	if fm.bad > 0 {
		m.stats.add("forward", "not_a_map", int64(fm.bad))
	}
	bufs.records = fm.records[:0] // grown for this message: kept for the next
	if err := m.store(ctx, actor, source{input: "forward", addr: addr, uid: actor.UID}, fm.records, &bufs.scratch); err != nil {
		// No ack: the client sends the chunk again.
		m.log.Warn("forward: store", "peer", addr, "err", err)
		journalMayRead = true
		return false
	}
	if fm.chunk != "" {
		marshal := msgpack.Marshal
		if jdec != nil {
			marshal = json.Marshal
		}
		ack, err := marshal(map[string]string{"ack": fm.chunk})
		if err == nil {
			_, err = conn.Write(ack)
		}
		if err != nil {
			return false
		}
	}
	return true
}

// peek gives the limit reader's buffer a Peek, to wait for a message
// without counting it.
func (l *limitReader) Peek(n int) ([]byte, error) {
	if p, ok := l.r.(interface{ Peek(int) ([]byte, error) }); ok {
		return p.Peek(n)
	}
	return nil, errors.New("no peek")
}
