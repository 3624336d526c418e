package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/engines"
)

// maxHTTPBody bounds one in_http request's body, 16 MiB.
const maxHTTPBody = 16 << 20

// HTTPRoutes serves Fluentd's in_http on the daemon's HTTP listener:
// POST /logs/TAG with a JSON record or an array of them.
func (m *module) HTTPRoutes() []engines.Route {
	return []engines.Route{{Pattern: "POST /logs/{tag...}", Handler: http.HandlerFunc(m.serveHTTP)}}
}

// serveHTTP stores the body's records under the path's tag. ?time= (Unix
// seconds, a fraction allowed) dates them, else now; a record's own
// "time" field is kept as a field. It answers 200 once they are durable,
// 400 for a body that is not a JSON object or array of objects.
func (m *module) serveHTTP(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	if tag == "" {
		m.stats.add("http", "bad_tag", 1)
		http.Error(w, "POST /logs/TAG: give a tag", http.StatusBadRequest)
		return
	}
	t := time.Now()
	if s := r.URL.Query().Get("time"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			m.stats.add("http", "bad_time", 1)
			http.Error(w, fmt.Sprintf("time=%s: give Unix seconds", s), http.StatusBadRequest)
			return
		}
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(frac*1e9))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHTTPBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			m.stats.add("http", "body_too_large", 1)
			http.Error(w, fmt.Sprintf("body larger than %d bytes", maxHTTPBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Fluentd's classic form: curl -d 'json={…}' (a form field json=); a
	// raw JSON body is taken whatever its content type (curl -d '{…}'
	// says it is a form).
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") && bytes.HasPrefix(bytes.TrimSpace(body), []byte("json=")) {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			m.stats.add("http", "bad_json", 1)
			http.Error(w, "/logs/"+tag+": form: "+err.Error(), http.StatusBadRequest)
			return
		}
		body = []byte(form.Get("json"))
	}
	recs, err := parseHTTPBody(tag, t, body)
	if err != nil {
		m.stats.add("http", "bad_json", 1)
		http.Error(w, "/logs/"+tag+": "+err.Error(), http.StatusBadRequest)
		return
	}
	actor, ok := engines.ActorFrom(r.Context())
	if !ok {
		actor = inputActor("http", r.RemoteAddr)
	}
	if err := m.store(r.Context(), actor, source{input: "http", addr: r.RemoteAddr, uid: actor.UID}, recs, nil); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// parseHTTPBody reads one JSON object or an array of objects.
func parseHTTPBody(tag string, t time.Time, body []byte) ([]Record, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("body has more than one JSON value")
	}
	var list []any
	switch x := v.(type) {
	case map[string]any:
		list = []any{x}
	case []any:
		list = x
	default:
		return nil, fmt.Errorf("body is a JSON %T, not an object or an array of objects", v)
	}
	recs := make([]Record, 0, len(list))
	for i, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d is not a JSON object", i)
		}
		recs = append(recs, Record{Tag: tag, Time: t, Fields: jsonNumbers(obj).(map[string]any)})
	}
	return recs, nil
}

// jsonNumbers turns json.Numbers into int64 where they are integers,
// float64 otherwise.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
