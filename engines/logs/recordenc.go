package logs

import (
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/journal/cbordet"
)

// The logs.record events of transcoded records are written here, as the
// journal's EncodeBody would write recordBodies' Bodies, byte for byte
// (TestEncodeRecordsMatchesJournal): the record's CBOR is copied in, the
// rest is a few known keys, in the order of their encodings.

// encodeScratch is memory encodeRecords may write its bodies into and
// use again for the next call, once the journal is done with them.
type encodeScratch struct {
	buf    []byte
	bodies []journal.Encoded
}

// encodeRecords returns the encoded logs.record bodies of recs, all
// transcoded (raw set), or ok false when one is not or node is empty (the
// journal fills the node in). With scratch, the bodies are written one
// after another into its buffer and alias it, until the next call with it.
func encodeRecords(node string, actor journal.Actor, src source, recs []Record, scratch *encodeScratch) (bodies []journal.Encoded, ok bool) {
	if node == "" {
		return nil, false
	}
	for _, r := range recs {
		if r.raw == nil {
			return nil, false
		}
	}
	// The parts every record shares, encoded once.
	var common []byte
	common = cbordet.AppendText(common, "source")
	n := uint64(1)
	if src.addr != "" {
		n++
	}
	withUID := src.uid >= 0 && src.input != "tail"
	if withUID {
		n++
	}
	common = cbordet.AppendHead(common, cbordet.Map, n)
	if withUID {
		common = cbordet.AppendInt(cbordet.AppendText(common, "uid"), int64(src.uid))
	}
	if src.addr != "" {
		common = cbordet.AppendText(cbordet.AppendText(common, "addr"), src.addr)
	}
	common = cbordet.AppendText(cbordet.AppendText(common, "input"), src.input)
	sourceEnd := len(common)
	common = cbordet.AppendText(common, "kind")
	common = cbordet.AppendText(common, RecordKind)
	common = cbordet.AppendText(common, "node")
	common = cbordet.AppendText(common, node)
	common = cbordet.AppendText(common, "actor")
	common = appendActor(common, &actor)
	common = cbordet.AppendText(common, "subject")
	sourcePart, envPart := common[:sourceEnd], common[sourceEnd:]

	size := func(r *Record) int { return 64 + len(common) + len(r.raw) + 2*len(r.Tag) + len(r.route) }
	var buf []byte // where bodies are written, when scratch is given
	if scratch != nil {
		total := 0
		for i := range recs {
			total += size(&recs[i])
		}
		if cap(scratch.buf) < total {
			scratch.buf = make([]byte, 0, total)
		}
		if cap(scratch.bodies) < len(recs) {
			scratch.bodies = make([]journal.Encoded, len(recs))
		}
		buf, bodies = scratch.buf[:0], scratch.bodies[:len(recs)]
	} else {
		bodies = make([]journal.Encoded, len(recs))
	}
	for i, r := range recs {
		var b []byte
		if scratch != nil {
			// Each body gets its reservation within what was sized above;
			// its capacity ends there, so it never writes into the next.
			b = buf[len(buf) : len(buf) : len(buf)+size(&r)]
		} else {
			b = make([]byte, 0, size(&r))
		}
		b = cbordet.AppendHead(b, cbordet.Map, 5)
		b = cbordet.AppendText(b, "data")
		fields := uint64(4)
		if r.route != "" {
			fields++
		}
		// tag, time, route, record, source: shorter keys first.
		b = cbordet.AppendHead(b, cbordet.Map, fields)
		b = cbordet.AppendText(cbordet.AppendText(b, "tag"), r.Tag)
		b = cbordet.AppendInt(cbordet.AppendText(b, "time"), r.Time.UnixNano())
		if r.route != "" {
			b = cbordet.AppendText(cbordet.AppendText(b, "route"), r.route)
		}
		b = append(cbordet.AppendText(b, "record"), r.raw...)
		b = append(b, sourcePart...)
		b = append(b, envPart...)
		b = cbordet.AppendText(b, r.Tag)
		bodies[i] = journal.Encoded{Body: b, Kind: RecordKind, Subject: r.Tag}
		if scratch != nil {
			// The whole reservation: a body that outgrew it was moved by
			// append and left it unused.
			buf = buf[:len(buf)+size(&r)]
		}
	}
	return bodies, true
}

// appendActor encodes a as the journal encodes a body's actor: uid, gid,
// pid and via always, the others when set.
func appendActor(dst []byte, a *journal.Actor) []byte {
	n := uint64(4)
	for _, s := range []string{a.Addr, a.Comm, a.User, a.Principal} {
		if s != "" {
			n++
		}
	}
	dst = cbordet.AppendHead(dst, cbordet.Map, n)
	dst = cbordet.AppendInt(cbordet.AppendText(dst, "gid"), int64(a.GID))
	dst = cbordet.AppendInt(cbordet.AppendText(dst, "pid"), int64(a.PID))
	dst = cbordet.AppendInt(cbordet.AppendText(dst, "uid"), int64(a.UID))
	dst = cbordet.AppendText(cbordet.AppendText(dst, "via"), a.Via)
	for _, kv := range [][2]string{{"addr", a.Addr}, {"comm", a.Comm}, {"user", a.User}, {"principal", a.Principal}} {
		if kv[1] != "" {
			dst = cbordet.AppendText(cbordet.AppendText(dst, kv[0]), kv[1])
		}
	}
	return dst
}
