//go:build thin

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// wholeBinary is the name of the binary with every engine, next to this
// one (make build writes both to bin/).
const wholeBinary = "cairnd"

// handOff execs cairnd with the same arguments when the command line needs
// it (needsWhole), so the process, its pid and its signals stay the
// caller's. It returns only when it did not hand off (ok false) or could
// not (the exit code to return).
func handOff(args []string) (code int, handed bool) {
	if !needsWhole(args) {
		return 0, false
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cairn: find this binary to run %s beside it: %v\n", wholeBinary, err)
		return exitUsage, true
	}
	path := filepath.Join(filepath.Dir(self), wholeBinary)
	err = syscall.Exec(path, append([]string{path}, args...), handOffEnv(os.Environ(), args))
	fmt.Fprintf(os.Stderr, "cairn: this statement runs in %s, the binary with every engine, which should be beside cairn (make build writes both): %v\n", path, err)
	return exitUsage, true
}

// dispatch sends a statement to the daemon: in this binary no statement the
// CLI runs itself gets here (handOff took it).
func (s *session) dispatch(text string) (interrupted bool, err error) {
	return s.exec(text)
}
