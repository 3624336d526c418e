package journal

import (
	"fmt"
	"sync"
)

// Clone returns a copy of r whose Record does not alias any other memory.
func (r *Raw) Clone() *Raw {
	return &Raw{Stream: r.Stream, Seq: r.Seq, Record: append([]byte(nil), r.Record...), kind: r.kind}
}

// rawCache holds the JSON of an event that several readers share (every
// live subscriber gets the same *Raw), so it is encoded once.
type rawCache struct {
	once sync.Once
	json []byte
	err  error
}

// JSON returns the event as -o json prints it and NATS carries it. For an
// event handed to live subscribers it is encoded once for all of them.
func (r *Raw) JSON() ([]byte, error) {
	if r.shared == nil {
		return r.encodeJSON()
	}
	r.shared.once.Do(func() { r.shared.json, r.shared.err = r.encodeJSON() })
	return r.shared.json, r.shared.err
}

func (r *Raw) encodeJSON() ([]byte, error) {
	ev, err := r.Decode()
	if err != nil {
		return nil, err
	}
	return appendEventJSON(make([]byte, 0, 256+len(r.Record)), ev)
}

// Kind returns the event's kind without decoding the rest of its body.
func (r *Raw) Kind() (string, error) {
	if r.kind != "" {
		return r.kind, nil
	}
	if err := CheckRecord(r.Record); err != nil {
		return "", err
	}
	kind, _, err := peekEnvelope(r.Body())
	if err != nil {
		return "", fmt.Errorf("%s seq %d: %w", r.Stream, r.Seq, err)
	}
	return string(kind), nil
}
