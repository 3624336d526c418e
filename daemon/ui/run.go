package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/engines"
)

// RunError is a statement that failed, as the endpoint answers it: the
// HTTP status, the error's code and message, and its place in the
// statement when it has one.
type RunError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"error"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
}

func (e *RunError) Error() string { return e.Message }

// serveRun answers a read-only statement of the command language, q=, as
// JSON: the same rows `cairn -o json` prints. Only verbs that read (and
// are not streams) run here; the daemon authorizes each as on the socket.
func (s *Server) serveRun(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		writeError(w, http.StatusBadRequest, badParam("q", errors.New("give a statement, such as q=deployments")))
		return
	}
	ans, err := s.run(r, q)
	if err != nil {
		writeRunError(w, err)
		return
	}
	writeJSON(w, ans)
}

func (s *Server) run(r *http.Request, stmt string) (*Answer, error) {
	actor, ok := engines.ActorFrom(r.Context())
	if !ok {
		return nil, &RunError{Status: http.StatusForbidden, Code: "permission_denied", Message: "the caller of this connection is unknown"}
	}
	return s.Run(r.Context(), actor, stmt)
}

func writeRunError(w http.ResponseWriter, err error) {
	var re *RunError
	if !errors.As(err, &re) {
		re = &RunError{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(re.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(re)
}
