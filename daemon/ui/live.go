package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// liveItem is one thing a live stream tells the browser.
type liveItem struct {
	stream string
	raw    []byte // the event's JSON; nil for a lag notice
	seq    int64
}

// heartbeat is how often an idle live stream sends a comment, so a proxy
// keeps it open and a browser gone away is noticed.
const heartbeat = 15 * time.Second

// serveLive streams new events (after from=, a stream=seq list as the ids
// below, else from now) as Server-Sent Events from a journal
// subscription per stream (no polling): "event: ev" with the event's JSON,
// "event: lagged" when the reader fell behind and caught up from disk
// (nothing is lost), first "event: ready" once subscribed. Each message's
// id holds every stream's last seq sent, so a browser that reconnects
// (EventSource's Last-Event-ID) resumes with no gap.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request) {
	streams, err := s.streamsParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	where, err := whereParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("this connection cannot stream"))
		return
	}
	// from= (the timeline's last seqs) or, on a reconnect, Last-Event-ID:
	// where each stream resumes.
	last := parseLastID(r.URL.Query().Get("from"))
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		last = parseLastID(id)
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	items := make(chan liveItem, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var match func(*journal.Raw) bool
	if where != nil {
		match = where.MatchRaw
	}
	for _, st := range streams {
		from := int64(0)
		if seq, ok := last[st.Name()]; ok {
			from = seq + 1
		}
		sub := st.Subscribe(ctx, from, match)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for {
				it, err := sub.Next(ctx)
				if err != nil {
					return
				}
				var li liveItem
				if it.Lagged {
					li = liveItem{stream: st.Name()}
				} else if p, err := it.Raw.JSON(); err == nil {
					li = liveItem{stream: st.Name(), raw: p, seq: it.Raw.Seq}
				} else {
					s.Log.Warn("live event", "stream", st.Name(), "seq", it.Raw.Seq, "err", err)
					continue
				}
				select {
				case items <- li:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\nevent: ready\ndata: {}\n\n")
	fl.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var b []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			fl.Flush()
			continue
		case li := <-items:
			// Send everything waiting in one write: at a thousand events a
			// second the browser gets bursts, not a flush per event.
			b = b[:0]
			for {
				b = appendItem(b, li, last)
				if len(b) > 256<<10 {
					break
				}
				var more bool
				select {
				case li, more = <-items:
				default:
				}
				if !more {
					break
				}
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func appendItem(b []byte, li liveItem, last map[string]int64) []byte {
	if li.raw == nil {
		return fmt.Appendf(b, "event: lagged\ndata: {\"stream\":%q}\n\n", li.stream)
	}
	last[li.stream] = li.seq
	b = append(b, "id: "...)
	b = append(b, formatLastID(last)...)
	b = append(b, "\nevent: ev\ndata: "...)
	b = append(b, li.raw...)
	return append(b, "\n\n"...)
}

// formatLastID writes every stream's last seq sent: "audit=12;capture=40".
func formatLastID(last map[string]int64) string {
	parts := make([]string, 0, len(last))
	for name, seq := range last {
		parts = append(parts, name+"="+strconv.FormatInt(seq, 10))
	}
	return strings.Join(parts, ";")
}

// parseLastID reads formatLastID's text; what it cannot read is left out.
func parseLastID(v string) map[string]int64 {
	out := map[string]int64{}
	for _, part := range strings.Split(v, ";") {
		name, seq, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(seq, 10, 64); err == nil && n >= 0 {
			out[name] = n
		}
	}
	return out
}
