package integration

import (
	"fmt"
	"strings"
	"testing"
)

// runawayWhere is an expression whose evaluation of any one event costs far
// more than the filter's runtime limit: three nested loops of 300.
func runawayWhere() string {
	xs := make([]string, 300)
	for i := range xs {
		xs[i] = fmt.Sprint(i)
	}
	l := "[" + strings.Join(xs, ",") + "]"
	return l + ".all(x, " + l + ".all(y, " + l + ".all(z, x + y + z >= 0)))"
}

// TestRunawayFilterIsAnError: a where clause that hits the cost limit is an
// error to the client, naming the expression, and the
// daemon goes on serving (issue 11 finding 6: it was turned into "no
// match" at about 7 s per event, and the scan went on after the client
// left).
func TestRunawayFilterIsAnError(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	for i := range 3 {
		cliOK(t, d, "emit", "app.tick", fmt.Sprintf("t/%d", i))
	}
	_, errOut, code := cli(t, d, "events", "where", runawayWhere())
	if code == 0 || !strings.Contains(errOut, "resource_exhausted") || !strings.Contains(errOut, "cost limit") {
		t.Fatalf("events with a runaway where: exit %d, %q; want resource_exhausted naming the cost limit", code, errOut)
	}
	if _, errOut, code := cli(t, d, "status"); code != 0 {
		t.Fatalf("status after a runaway where: %d %s", code, errOut)
	}
}
