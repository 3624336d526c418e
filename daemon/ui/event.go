package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/journal"
)

// EventDetail is one event with what it means: its summary and changes
// before → after (as `audit who` computes them) and how it sits in its
// stream's hash chain.
type EventDetail struct {
	Event   json.RawMessage `json:"event"`
	Summary string          `json:"summary,omitempty"`
	Changes []Change        `json:"changes"`
	Chain   ChainCheck      `json:"chain"`
}

// ChainCheck is the event's own link of the chain: its stored hash against
// the hash recomputed from its parts, and its prev against the hash of the
// event before it (when that event is still stored). /ui/api/verify checks
// the whole stream.
type ChainCheck struct {
	Hash     string `json:"hash"`
	Prev     string `json:"prev"`
	HashOK   bool   `json:"hash_ok"`
	PrevOK   *bool  `json:"prev_ok"` // null: the event before is not stored (pruned, or seq 1 after an import anchor)
	Computed string `json:"computed"`
}

func (s *Server) serveEvent(w http.ResponseWriter, r *http.Request) {
	st, seq, err := s.eventParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	d, err := s.eventDetail(st, seq)
	if errors.Is(err, errNoEvent) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s has no event %d (pruned, or not written yet)", st.Name(), seq))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, d)
}

func (s *Server) eventParams(r *http.Request) (*journal.Stream, int64, error) {
	name := r.URL.Query().Get("stream")
	if name == "" {
		name = journal.Audit
	}
	st := s.Journal.Stream(name)
	if st == nil {
		return nil, 0, badParam("stream", fmt.Errorf("unknown stream %q", name))
	}
	seq, err := strconv.ParseInt(r.URL.Query().Get("seq"), 10, 64)
	if err != nil || seq < 1 {
		return nil, 0, badParam("seq", fmt.Errorf("%q: want the event's seq, an integer from 1", r.URL.Query().Get("seq")))
	}
	return st, seq, nil
}

var errNoEvent = errors.New("no such event")

// eventDetail reads one event and explains it.
func (s *Server) eventDetail(st *journal.Stream, seq int64) (*EventDetail, error) {
	it := st.Scan(journal.Query{From: seq - 1, To: seq})
	defer it.Close()
	var prev, raw *journal.Raw
	for it.Next() {
		if it.Raw().Seq == seq {
			raw = it.Raw().Clone()
		} else {
			prev = it.Raw().Clone()
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read %s seq %d: %w", st.Name(), seq, err)
	}
	if raw == nil {
		return nil, errNoEvent
	}
	p, err := raw.JSON()
	if err != nil {
		return nil, fmt.Errorf("%s seq %d: %w", st.Name(), seq, err)
	}
	d := &EventDetail{Event: p, Changes: []Change{}}
	computed := raw.ComputeHash()
	d.Chain = ChainCheck{Hash: raw.Hash().String(), Prev: raw.Prev().String(), Computed: computed.String(), HashOK: computed == raw.Hash()}
	if prev != nil {
		ok := prev.Hash() == raw.Prev()
		d.Chain.PrevOK = &ok
	}
	if s.Explain != nil {
		ev, err := raw.Decode()
		if err != nil {
			return nil, fmt.Errorf("%s seq %d: %w", st.Name(), seq, err)
		}
		sum, changes := s.Explain(st, ev)
		d.Summary = sum
		if changes != nil {
			d.Changes = changes
		}
	}
	return d, nil
}

// verifyReport is journal.VerifyReport with a verdict.
type verifyReport struct {
	Stream    string `json:"stream"`
	OK        bool   `json:"ok"`
	First     int64  `json:"first"`
	Last      int64  `json:"last"`
	Events    int64  `json:"events"`
	BadSeq    int64  `json:"bad_seq,omitempty"`
	Problem   string `json:"problem,omitempty"`
	SignedSeq int64  `json:"signed_seq,omitempty"`
	SignedBy  string `json:"signed_by,omitempty"`
}

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("stream")
	if name == "" {
		name = journal.Audit
	}
	st := s.Journal.Stream(name)
	if st == nil {
		writeError(w, http.StatusBadRequest, badParam("stream", fmt.Errorf("unknown stream %q", name)))
		return
	}
	rep, err := st.Verify(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("verify %s: %w", name, err))
		return
	}
	writeJSON(w, verifyReport{
		Stream: name, OK: rep.BadSeq == 0, First: rep.First, Last: rep.Last, Events: rep.Events,
		BadSeq: rep.BadSeq, Problem: rep.Problem, SignedSeq: rep.SignedSeq, SignedBy: rep.SignedBy,
	})
}
