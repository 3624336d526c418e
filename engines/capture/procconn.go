package capture

import (
	"encoding/binary"
	"fmt"
)

// This file parses the messages of the netlink proc connector
// (linux/connector.h, linux/cn_proc.h) in pure functions, so that they are
// tested on hand-built bytes. Netlink speaks the host's byte order.

// The proc connector's constants, from linux/connector.h and cn_proc.h.
const (
	cnIdxProc          = 0x1
	cnValProc          = 0x1
	procCnMcastListen  = 1
	procCnMcastIgnore  = 2
	nlmsgHdrLen        = 16
	cnMsgLen           = 20 // cb_id(8) seq(4) ack(4) len(2) flags(2)
	procEventHdrLen    = 16 // what(4) cpu(4) timestamp_ns(8)
	nlmsgTypeDone      = 0x3
	nlmsgTypeError     = 0x2
	nlmsgTypeOverrun   = 0x4
	procEventNone      = 0x00000000
	procEventFork      = 0x00000001
	procEventExec      = 0x00000002
	procEventUID       = 0x00000004
	procEventGID       = 0x00000040
	procEventExit      = 0x80000000
	procEventNonzeroEx = 0x20000000
)

// procEvent is one decoded proc connector event. Fields not carried by the
// event's kind are zero.
type procEvent struct {
	What      uint32
	Timestamp uint64 // ns, CLOCK_MONOTONIC (ktime_get_ns)

	// PID and TGID are the thread and process the event is about: the
	// child for a fork, the exec'ing or exiting task otherwise.
	PID, TGID int64
	// ParentPID and ParentTGID are the parent of a fork or of an exiting task.
	ParentPID, ParentTGID int64

	// ExitCode is the wait status of an exit ((code << 8) | signal).
	ExitCode   uint32
	ExitSignal uint32 // the signal sent to the parent (SIGCHLD)

	// RID and EID are the new real and effective ids of a UID event (or
	// gids of a GID event).
	RID, EID int64

	// AckErr is the errno the connector answers a listen request with
	// (a PROC_EVENT_NONE event).
	AckErr uint32
}

// ShellStatus is the exit status as a shell reports it: the exit code, or
// 128 plus the signal that killed the process.
func (e procEvent) ShellStatus() int64 {
	if sig := e.ExitCode & 0x7f; sig != 0 {
		return 128 + int64(sig)
	}
	return int64(e.ExitCode>>8) & 0xff
}

// parseProcEvents decodes the proc connector events in one netlink
// datagram. Messages of other connectors and events of other kinds are
// skipped; a truncated message is an error.
func parseProcEvents(b []byte, out []procEvent) ([]procEvent, error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:4]))
		typ := ne.Uint16(b[4:6])
		if l < nlmsgHdrLen || l > len(b) {
			return out, fmt.Errorf("netlink message of %d bytes in a datagram of %d", l, len(b))
		}
		msg := b[nlmsgHdrLen:l]
		// Messages are padded to 4 bytes.
		next := (l + 3) &^ 3
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
		switch typ {
		case nlmsgTypeError:
			if len(msg) >= 4 {
				if errno := int32(ne.Uint32(msg[0:4])); errno != 0 {
					return out, fmt.Errorf("netlink error %d", -errno)
				}
			}
			continue
		case nlmsgTypeDone:
			// The connector sends its events as NLMSG_DONE messages.
		default:
			continue
		}
		if len(msg) < cnMsgLen {
			return out, fmt.Errorf("connector message of %d bytes, shorter than its %d-byte header", len(msg), cnMsgLen)
		}
		idx, val := ne.Uint32(msg[0:4]), ne.Uint32(msg[4:8])
		dlen := int(ne.Uint16(msg[16:18]))
		if idx != cnIdxProc || val != cnValProc {
			continue
		}
		data := msg[cnMsgLen:]
		if dlen > len(data) {
			return out, fmt.Errorf("connector message says %d data bytes, has %d", dlen, len(data))
		}
		ev, ok, err := parseProcEvent(data[:dlen])
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

// parseProcEvent decodes one struct proc_event. It reports false for the
// kinds the proc source does not use (sid, ptrace, comm, coredump).
func parseProcEvent(d []byte) (procEvent, bool, error) {
	ne := binary.NativeEndian
	var ev procEvent
	if len(d) < procEventHdrLen {
		return ev, false, fmt.Errorf("proc event of %d bytes, shorter than its %d-byte header", len(d), procEventHdrLen)
	}
	ev.What = ne.Uint32(d[0:4])
	ev.Timestamp = ne.Uint64(d[8:16])
	body := d[procEventHdrLen:]
	need := func(n int) error {
		if len(body) < n {
			return fmt.Errorf("proc event %#x of %d bytes, want %d", ev.What, len(body), n)
		}
		return nil
	}
	u := func(i int) int64 { return int64(ne.Uint32(body[4*i:])) }
	switch ev.What {
	case procEventNone:
		if len(body) >= 4 {
			ev.AckErr = uint32(u(0))
		}
	case procEventFork:
		if err := need(16); err != nil {
			return ev, false, err
		}
		ev.ParentPID, ev.ParentTGID, ev.PID, ev.TGID = u(0), u(1), u(2), u(3)
	case procEventExec:
		if err := need(8); err != nil {
			return ev, false, err
		}
		ev.PID, ev.TGID = u(0), u(1)
	case procEventUID, procEventGID:
		if err := need(16); err != nil {
			return ev, false, err
		}
		ev.PID, ev.TGID, ev.RID, ev.EID = u(0), u(1), u(2), u(3)
	case procEventExit:
		// parent_pid and parent_tgid were added in Linux 4.18.
		if err := need(16); err != nil {
			return ev, false, err
		}
		ev.PID, ev.TGID = u(0), u(1)
		ev.ExitCode, ev.ExitSignal = uint32(u(2)), uint32(u(3))
		if len(body) >= 24 {
			ev.ParentPID, ev.ParentTGID = u(4), u(5)
		}
	default:
		return ev, false, nil
	}
	return ev, true, nil
}

// procListenMessage is the netlink datagram that subscribes a socket to
// the proc connector (op PROC_CN_MCAST_LISTEN) or unsubscribes it.
func procListenMessage(op uint32, portID uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], nlmsgTypeDone)
	ne.PutUint32(b[12:], portID)
	m := b[nlmsgHdrLen:]
	ne.PutUint32(m[0:], cnIdxProc)
	ne.PutUint32(m[4:], cnValProc)
	ne.PutUint16(m[16:], 4)
	ne.PutUint32(m[cnMsgLen:], op)
	return b
}
