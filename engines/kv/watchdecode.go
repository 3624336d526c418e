package kv

import (
	"encoding/base64"
	"fmt"

	"github.com/cairnhq/cairn/journal"
)

// opData is one op as event data stores it (see op.data), decoded into
// a struct: a watch catching up decodes only kind and data, without maps.
type opData struct {
	Op       string  `cbor:"op"`
	Key      *string `cbor:"key"`
	KeyB64   *string `cbor:"key_b64"`
	Value    *string `cbor:"value"`
	ValueB64 *string `cbor:"value_b64"`
	Lease    *string `cbor:"lease"` // hex, as FormatLeaseID

	CreateRev int64 `cbor:"create_rev"`
	Version   int64 `cbor:"version"`
	PrevRev   int64 `cbor:"prev_rev"`
}

type watchBody struct {
	Kind string `cbor:"kind"`
	Data struct {
		opData
		Keys []opData `cbor:"keys"`
		Ops  []opData `cbor:"ops"`
	} `cbor:"data"`
}

func pickBytes(s, b64 *string) ([]byte, error) {
	switch {
	case s != nil:
		return []byte(*s), nil
	case b64 != nil:
		return base64.StdEncoding.DecodeString(*b64)
	}
	return nil, nil
}

func (d *opData) op(del bool) (op, error) {
	o := op{Del: del, CreateRev: d.CreateRev, Version: d.Version, PrevRev: d.PrevRev}
	switch d.Op { // as opFromData reads it
	case "":
	case "put":
		o.Del = false
	case "delete":
		o.Del = true
	default:
		return o, fmt.Errorf("unknown op %q", d.Op)
	}
	var err error
	if d.Lease != nil && !o.Del {
		if o.Lease, err = ParseLeaseID(*d.Lease); err != nil {
			return o, err
		}
	}
	if o.Key, err = pickBytes(d.Key, d.KeyB64); err != nil {
		return o, err
	}
	if !o.Del {
		if o.Value, err = pickBytes(d.Value, d.ValueB64); err != nil {
			return o, err
		}
		if o.Value == nil {
			o.Value = []byte{}
		}
	}
	return o, nil
}

// storedOps returns the key changes of a stored kv or lease event: from
// rawOps, or, for an event rawOps refuses (an imported one with a key
// twice, say), from the whole event decoded, as Fold reads it.
func storedOps(raw *journal.Raw) ([]op, error) {
	ops, err := rawOps(raw)
	if err == nil {
		return ops, nil
	}
	ev, derr := raw.Decode()
	if derr != nil {
		return nil, err
	}
	return eventOps(ev.Kind, ev.Data)
}

// rawOps decodes the key changes of a stored kv or lease event.
func rawOps(raw *journal.Raw) ([]op, error) {
	var b watchBody
	if err := journal.DecodeFields(raw.Body(), &b); err != nil {
		return nil, fmt.Errorf("seq %d: %w", raw.Seq, err)
	}
	var list []opData
	del := true
	switch b.Kind {
	case KindPut:
		o, err := b.Data.opData.op(false)
		if err != nil {
			return nil, err
		}
		return []op{o}, nil
	case KindDelete, KindLeaseRevoke, KindLeaseExpire:
		list = b.Data.Keys
	case KindTxn:
		list, del = b.Data.Ops, false
	default:
		return nil, nil
	}
	ops := make([]op, len(list))
	for i := range list {
		o, err := list[i].op(del)
		if err != nil {
			return nil, err
		}
		ops[i] = o
	}
	return ops, nil
}
