// Package wire is the vocabulary both sides of cairn's socket share: the
// request and answer envelopes, the line limit, the error codes and the
// rows that the daemon writes and the CLI, the benchmarks and the tests
// read. It imports nothing of cairn's, so the daemon, the engines and the
// client can all depend on it.
package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxLine is the longest request or answer line the socket carries.
const MaxLine = 4 << 20

// Code is an error answer's code: gRPC's code names in snake_case, plus
// Parse for a statement the DSL parser rejected.
type Code string

// The codes cairn answers with.
const (
	Canceled           Code = "canceled"
	Unknown            Code = "unknown"
	InvalidArgument    Code = "invalid_argument"
	DeadlineExceeded   Code = "deadline_exceeded"
	NotFound           Code = "not_found"
	AlreadyExists      Code = "already_exists"
	PermissionDenied   Code = "permission_denied"
	ResourceExhausted  Code = "resource_exhausted"
	FailedPrecondition Code = "failed_precondition"
	Aborted            Code = "aborted"
	OutOfRange         Code = "out_of_range"
	Unimplemented      Code = "unimplemented"
	Internal           Code = "internal"
	Unavailable        Code = "unavailable"
	DataLoss           Code = "data_loss"
	Unauthenticated    Code = "unauthenticated"
	Parse              Code = "parse"
)

// Pos is a 1-based place in a statement; Col counts code points.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// Error is an error answer's body, and the error an engine returns to
// choose the code the caller sees.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Pos     *Pos   `json:"pos,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code and the formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the *Error in err's chain, Canceled and
// DeadlineExceeded for context errors, "" for nil and Internal for anything
// else. The daemon maps the journal's typed errors before it asks.
func CodeOf(err error) Code {
	var we *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &we):
		return we.Code
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Internal
}

// Request is one request line in its JSON form. A line that is not JSON
// is a raw statement.
type Request struct {
	ID     int64  `json:"id"`
	DSL    string `json:"dsl,omitempty"`
	Cancel bool   `json:"cancel,omitempty"`
}

// Answer is one answer line: exactly one of Row, Event, Line, Output,
// Exit, Done and Error is set.
type Answer struct {
	ID     int64           `json:"id"`
	Row    json.RawMessage `json:"row,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"`
	Line   *string         `json:"line,omitempty"`
	Output *Output         `json:"output,omitempty"`
	Exit   *int            `json:"exit,omitempty"`
	Done   bool            `json:"done,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Output is a piece of a process's output (a container run or exec
// without detach): the CLI writes Data to its own stdout or stderr as the
// process wrote it.
type Output struct {
	FD   int    `json:"fd"` // 1 stdout, 2 stderr
	Data string `json:"data"`
}

// The answer kinds, as the member names of an answer line. An exit answer
// comes before done: the exit status of the process a statement ran, which
// the CLI exits with.
const (
	KindRow    = "row"
	KindEvent  = "event"
	KindLine   = "line"
	KindOutput = "output"
	KindExit   = "exit"
	KindDone   = "done"
	KindError  = "error"
)

// StatusRow is the row `status` answers.
type StatusRow struct {
	Node    string `json:"node"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	Uptime  string `json:"uptime"`
	NATS    string `json:"nats"`
	HTTP    string `json:"http"` // the HTTP listener's bound address, or "off"
	// Listeners are every listener by name (socket, nats, http, and the
	// engines': dns, etcd, forward, syslog) with its bound address, or
	// "off"; a test that passed 127.0.0.1:0 reads the port here.
	Listeners map[string]string `json:"listeners,omitempty"`
	Socket    string            `json:"socket"`
	Data      string            `json:"data"`
	Audit     StreamInfo        `json:"audit"`
	Capture   StreamInfo        `json:"capture"`
	// Streams are the streams engines declared beside audit and capture.
	Streams map[string]StreamInfo `json:"streams,omitempty"`
}

// StreamInfo is one stream's part of the status row.
type StreamInfo struct {
	LastSeq int64 `json:"last_seq"`
	Events  int64 `json:"events"`
	Bytes   int64 `json:"bytes"`
}

// ExportHead is the first row of `journal export`: what the capture file's
// header needs. Anchor and Head are hex SHA-256 hashes.
type ExportHead struct {
	Stream   string `json:"stream"`
	Node     string `json:"node"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Events   int64  `json:"events"`
	Anchor   string `json:"anchor"`
	Head     string `json:"head"`
}

// ExportRecord is one event row of `journal export`: the record exactly as
// stored (base64 in JSON); or, with Sig and no Record, a signed head of the
// event before (journal.Signature's encoding).
type ExportRecord struct {
	Seq    int64  `json:"seq"`
	Record []byte `json:"record"`
	Sig    []byte `json:"sig,omitempty"`
}

// ImportRow answers one imported part of `journal import` (or, from a
// restore, one file).
type ImportRow struct {
	Stream   string `json:"stream"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Events   int64  `json:"events"`
	Head     string `json:"head"`
	// Signer is the fingerprint of the key that signed the part's last
	// event ("" if none did), SignedTo the last signed seq, Trusted
	// whether the daemon trusts Signer.
	Signer   string `json:"signer,omitempty"`
	SignedTo int64  `json:"signed_to,omitempty"`
	Trusted  bool   `json:"trusted"`
}

// HelpRow is one verb of the table, as `help` lists it and the shell
// completes it.
type HelpRow struct {
	Verb    string `json:"verb"`
	Usage   string `json:"usage"`
	Summary string `json:"summary"`
}

// ExportSummary is the row the CLI prints after `journal export` wrote a
// capture file.
type ExportSummary struct {
	File     string `json:"file"`
	Stream   string `json:"stream"`
	Files    int    `json:"files"`
	Events   int64  `json:"events"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Bytes    int64  `json:"bytes"`
	Head     string `json:"head"`
}

// ImportSummary is the row the CLI prints for one file `journal import`
// sent.
type ImportSummary struct {
	File     string `json:"file"`
	Stream   string `json:"stream"`
	Parts    int    `json:"parts"`
	Events   int64  `json:"events"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Head     string `json:"head"`
	Signer   string `json:"signer,omitempty"`
	Trusted  bool   `json:"trusted"`
}
