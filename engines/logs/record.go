package logs

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/cairnhq/cairn/journal"
)

// Record is one log record as Fluentd has it: a tag, the record's own time
// and its fields.
type Record struct {
	Tag    string
	Time   time.Time
	Fields map[string]any
	// raw, when set, is Fields as the journal encodes them (deterministic
	// CBOR), and Fields is nil until fields decodes it: a PackedForward
	// record transcoded from msgpack.
	raw []byte
	// route is the route that took the record, whose output follows it.
	route string
	// offset is a tailed line's end in its file.
	offset int64
}

// source says where records came from, as stored with each: the input and
// the peer's address.
type source struct {
	input string // forward, syslog, http, tail
	addr  string
	uid   int // the peer's uid where the kernel knows it (loopback TCP), else -1
}

// store appends records to the logs stream in one append: when it returns
// without error they are durable (the journal fsyncs before it answers),
// which is what a forward ack promises.
//
// scratch, when not nil, is memory to encode the records' events into; the
// caller may use it again once store returned nil. After an error the
// journal may still read it (a request whose context ended can still be
// committed): it must not be used again.
func (m *module) store(ctx context.Context, actor journal.Actor, src source, recs []Record, scratch *encodeScratch) error {
	if recs = m.routes.apply(recs, m.stats, src.input); len(recs) == 0 {
		return nil
	}
	var err error
	if enc, ok := encodeRecords(m.node, actor, src, recs, scratch); ok {
		_, err = m.logs.AppendEncoded(ctx, enc...)
	} else {
		_, err = m.logs.Append(ctx, recordBodies(m.node, actor, src, recs)...)
	}
	if err != nil {
		m.stats.add(src.input, "store_failed", int64(len(recs)))
		return fmt.Errorf("store %d log records: %w", len(recs), err)
	}
	m.stats.add(src.input, "records", int64(len(recs)))
	return nil
}

// recordBodies returns the logs.record events of recs.
func recordBodies(node string, actor journal.Actor, src source, recs []Record) []*journal.Body {
	bodies := make([]*journal.Body, len(recs))
	srcMap := map[string]any{"input": src.input}
	if src.addr != "" {
		srcMap["addr"] = src.addr
	}
	if src.uid >= 0 && src.input != "tail" {
		srcMap["uid"] = int64(src.uid)
	}
	for i, r := range recs {
		bodies[i] = &journal.Body{Kind: RecordKind, Subject: r.Tag, Node: node, Actor: actor,
			Data: map[string]any{"tag": r.Tag, "time": r.Time.UnixNano(), "record": r.Fields, "source": srcMap}}
		if r.raw != nil {
			bodies[i].Data["record"] = cbor.RawMessage(r.raw)
		}
		if r.route != "" {
			bodies[i].Data["route"] = r.route
		}
	}
	return bodies
}

// fields returns the record's fields, decoding them from raw the first
// time.
func (r *Record) fields() (map[string]any, error) {
	if r.Fields == nil && r.raw != nil {
		if err := journal.DecodeValue(r.raw, &r.Fields); err != nil {
			return nil, fmt.Errorf("record of %s: %w", r.Tag, err)
		}
	}
	return r.Fields, nil
}

// inputActor is who sends records through a network input: not a local
// user the daemon knows (uid -1), at addr.
func inputActor(via, addr string) journal.Actor {
	return journal.Actor{UID: -1, GID: -1, Via: via, Addr: addr}
}

// normalize turns what a decoder gave into what the journal stores and CEL
// compares: maps with string keys, int64, float64, strings for UTF-8 byte
// strings (Fluentd's clients often send str as bin), recursively.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(normalize(k))] = normalize(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return x
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint:
		return uint64(x)
	case float32:
		return float64(x)
	}
	return v
}
