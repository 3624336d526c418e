package integration

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// The tests of what a non-root caller may do run the real CLI as uid
// testUID in the group testGroup, which the daemon is told owns its
// socket (--socket-group), as an operator would add a user to it.
const (
	testUID   = 65534
	testGID   = 65534
	testGroup = 4242
)

// requireRootForUsers skips a test that needs to act as another user.
func requireRootForUsers(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running the CLI as another uid needs root (CI runs as root)")
	}
}

// startGroupDaemon starts a daemon whose socket the test group may use,
// in a directory that uid testUID may search.
func startGroupDaemon(t *testing.T, opts ...daemonOpt) *daemonProc {
	t.Helper()
	dir := shortTempDir(t)
	os.Chmod(dir, 0o755)
	opts = append([]daemonOpt{withSocket(filepath.Join(dir, "cairn.sock")), withFlags("--socket-group", "4242")}, opts...)
	return startDaemon(t, opts...)
}

// userCmd is the CLI, run as uid testUID with the test group, against d.
func userCmd(d *daemonProc, args ...string) *exec.Cmd {
	cmd := exec.Command(cairnBin, append([]string{"--socket", d.Socket}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testUID, Gid: testGID, Groups: []uint32{testGroup}}}
	cmd.Dir = "/"
	return cmd
}

// userCLI runs the CLI as uid testUID and returns its output and exit code.
func userCLI(t *testing.T, d *daemonProc, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := userCmd(d, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cairn as uid %d: %v", testUID, err)
	}
	return out.String(), errb.String(), code
}

// holdConn starts `cairn tail from=1` as uid testUID and returns once the
// daemon has answered it (its connection is open); the process is killed at
// the end of the test.
func holdConn(t *testing.T, d *daemonProc) *exec.Cmd {
	t.Helper()
	cmd := userCmd(d, "-o", "json", "tail", "from=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !bufio.NewScanner(out).Scan() {
		cmd.Wait()
		t.Fatalf("tail as uid %d answered nothing: %s", testUID, errb.String())
	}
	return cmd
}
