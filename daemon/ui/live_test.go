package ui

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// TestLiveStream: the live endpoint says ready once subscribed, sends an
// event appended after that (and only the ones its filter matches), and
// ends when the server shuts down: an http.Server's Shutdown waits for
// requests, and a stream would otherwise hold it for the drain timeout.
func TestLiveStream(t *testing.T) {
	j, now := testJournal(t)
	s := &Server{Journal: j}
	h := http.NewServeMux()
	for _, r := range s.Routes() {
		h.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(engines.WithActor(r.Context(), journal.SystemActor())))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + `/ui/api/live?streams=audit&where=kind%20%3D%3D%20%22kv.put%22`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	next := func() (event, data string) {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && event != "":
				return event, data
			}
		}
	}
	if ev, _ := next(); ev != "ready" {
		t.Fatalf("first %q, want ready", ev)
	}
	appendAt(t, j.Stream(journal.Audit), now, 0, "app.note", "skipped")
	appendAt(t, j.Stream(journal.Audit), now, 0, "kv.put", "k")
	if ev, data := next(); ev != "ev" || !strings.Contains(data, `"kind":"kv.put"`) {
		t.Fatalf("got %s %s, want the kv.put", ev, data)
	}
	s.Shutdown()
	s.Shutdown() // twice is harmless
	if _, err := io.ReadAll(rd); err != nil {
		t.Fatalf("after Shutdown the stream should end cleanly: %v", err)
	}
}
