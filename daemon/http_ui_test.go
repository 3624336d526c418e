package daemon

import (
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
)

// TestUIAnswersBounded: a statement run for the dashboard may answer at
// most maxUIAnswers rows, events and lines; the next is an error that says
// how to narrow it, not an answer held in memory without end.
func TestUIAnswersBounded(t *testing.T) {
	r := &uiAnswers{stmt: &dsl.Statement{Spec: &dsl.Spec{Verb: "events"}}}
	for i := range maxUIAnswers {
		if err := r.Line("x"); err != nil {
			t.Fatalf("answer %d refused: %v", i+1, err)
		}
	}
	err := r.Row(map[string]int{"n": 1})
	if err == nil || !strings.Contains(err.Error(), "narrow it") {
		t.Fatalf("answer past the bound: %v, want an error saying to narrow it", err)
	}
	if len(r.ans.Lines) != maxUIAnswers || len(r.ans.Rows) != 0 {
		t.Fatalf("kept %d lines and %d rows", len(r.ans.Lines), len(r.ans.Rows))
	}
}
