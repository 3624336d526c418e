package integration

import (
	"strings"
	"testing"
)

// TestConnectionCapPerUID: a non-root uid in the socket's group holds at
// most --max-conns-per-uid connections; the next one is told why
// (resource_exhausted) instead of hanging, and root still gets answers.
// Finding 7 of the hardening issue: 21k connections from one user used to
// exhaust the daemon's descriptors.
func TestConnectionCapPerUID(t *testing.T) {
	requireRootForUsers(t)
	t.Parallel()
	d := startGroupDaemon(t, withFlags("--max-conns-per-uid", "4"))
	if _, errOut, code := userCLI(t, d, "status"); code != 0 {
		t.Fatalf("status as uid %d through the socket group: exit %d: %s", testUID, code, errOut)
	}
	for range 4 {
		holdConn(t, d)
	}
	_, errOut, code := userCLI(t, d, "status")
	if code != 1 || !strings.Contains(errOut, "resource_exhausted") || !strings.Contains(errOut, "--max-conns-per-uid") {
		t.Fatalf("fifth connection of uid %d: exit %d, %q; want resource_exhausted naming --max-conns-per-uid", testUID, code, errOut)
	}
	if _, errOut, code := cli(t, d, "status"); code != 0 {
		t.Fatalf("root's status with uid %d at its cap: exit %d: %s", testUID, code, errOut)
	}
}
