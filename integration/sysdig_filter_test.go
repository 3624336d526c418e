package integration

import (
	"strings"
	"testing"
)

// TestSysdigFilterClause: `filter 'SYSDIG'` beside `where 'CEL'` (issue 13,
// sysdig's filter language): over events a real `capture run` journaled,
// a sysdig filter selects exactly what the equivalent CEL does, both
// together must both match, and a malformed filter is an error at its
// place.
func TestSysdigFilterClause(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	if _, errOut, code := cli(t, d, "capture", "run", "--", "sh", "-c", "cat /etc/hostname >/dev/null; ls / >/dev/null"); code != 0 {
		t.Fatalf("capture run: exit %d\n%s", code, errOut)
	}
	for _, tc := range []struct{ filter, where string }{
		{"proc.name=cat", `proc.name == "cat"`},
		{"proc.name in (cat, ls) and not evt.type=execve", `proc.name in ["cat", "ls"] && !(evt.type == "execve")`},
		{"proc.name=ls or proc.name=cat and evt.failed", `proc.name == "ls" || (proc.name == "cat" && evt.res < 0)`},
		{"fd.name startswith /etc", `fd.name.startsWith("/etc")`},
	} {
		got := cliOK(t, d, "-o", "json", "events", "stream=capture", "filter", tc.filter)
		want := cliOK(t, d, "-o", "json", "events", "stream=capture", "where", tc.where)
		if got != want {
			t.Errorf("filter %q and where %q differ:\n%s\nvs\n%s", tc.filter, tc.where, got, want)
		}
		if strings.Count(want, "\n") == 0 && tc.filter == "proc.name=cat" {
			t.Errorf("where %q matched nothing: the workload's events are missing", tc.where)
		}
	}
	both := cliOK(t, d, "-o", "json", "events", "stream=capture", "filter", "proc.name=cat", "where", `proc.name == "ls"`)
	if strings.TrimSpace(both) != "" {
		t.Errorf("filter and where together must both match: %s", both)
	}
	_, errOut, code := cli(t, d, "events", "filter", "proc.name cat")
	if code != 2 || !strings.Contains(errOut, "filter: missing an operator after proc.name") || !strings.Contains(errOut, "1:26") {
		t.Errorf("a malformed filter: exit %d, %q", code, errOut)
	}
}
