package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/peercred"
)

// maxSyslogMessage bounds one syslog message over TCP (octet counting or a
// line), 64 KiB; UDP datagrams are bounded by their size.
const maxSyslogMessage = 64 << 10

// startSyslog listens for syslog on addr, UDP and TCP on the same port.
func (m *module) startSyslog(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
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
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(8 << 20) // bursts wait in the kernel, not dropped
	}
	m.addListener("syslog", ln.Addr().String(), func() error {
		pc.Close()
		return ln.Close()
	})
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.syslogUDP(ctx, pc)
	}()
	go func() {
		defer m.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.syslogTCP(ctx, conn)
			}()
		}
	}()
	return nil
}

// syslogUDP stores datagrams, in batches of what arrived together: one
// reader drains the socket while the previous batch is appended.
func (m *module) syslogUDP(ctx context.Context, pc net.PacketConn) {
	type msg struct {
		rec  Record
		addr string
	}
	batches := make(chan []msg, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range batches {
			byAddr := map[string][]Record{}
			for _, x := range b {
				byAddr[x.addr] = append(byAddr[x.addr], x.rec)
			}
			for addr, recs := range byAddr {
				if err := m.store(ctx, inputActor("syslog", addr), source{input: "syslog", addr: addr, uid: -1}, recs, nil); err != nil && ctx.Err() == nil {
					m.log.Warn("syslog: store", "err", err)
				}
			}
		}
	}()
	defer func() {
		close(batches)
		<-done
	}()
	buf := make([]byte, 65536)
	var batch []msg
	for {
		// Wait for a datagram, then take what else is already there
		// without waiting.
		deadline := time.Time{}
		if len(batch) > 0 {
			deadline = time.Now().Add(time.Millisecond)
		}
		_ = pc.SetReadDeadline(deadline)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				batches <- batch
				batch = nil
				continue
			}
			if len(batch) > 0 {
				batches <- batch
			}
			return
		}
		rec, err := parseSyslog(string(buf[:n]), time.Now())
		if err != nil {
			m.stats.add("syslog", "unparsed", 1)
			continue
		}
		batch = append(batch, msg{rec, from.String()})
		if len(batch) >= 1024 {
			batches <- batch
			batch = nil
		}
	}
}

// syslogTCP reads messages framed by octet counting (RFC 6587 3.4.1: "LEN
// MSG") or by newlines, whichever each message starts with.
func (m *module) syslogTCP(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	addr := conn.RemoteAddr().String()
	actor := peercred.TCPActor(conn.LocalAddr(), conn.RemoteAddr(), "syslog")
	src := source{input: "syslog", addr: addr, uid: actor.UID}
	br := bufio.NewReaderSize(conn, maxSyslogMessage)
	for {
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		var line string
		if first[0] >= '1' && first[0] <= '9' {
			lenStr, err := br.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
			if err != nil || n <= 0 || n > maxSyslogMessage {
				m.stats.add("syslog", "bad_frame", 1)
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				return
			}
			line = string(b)
		} else {
			b, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				m.stats.add("syslog", "bad_frame", 1)
				return
			}
			if err != nil && len(b) == 0 {
				return
			}
			line = string(b)
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		rec, err := parseSyslog(line, time.Now())
		if err != nil {
			m.stats.add("syslog", "unparsed", 1)
			continue
		}
		if err := m.store(ctx, actor, src, []Record{rec}, nil); err != nil {
			return
		}
	}
}
