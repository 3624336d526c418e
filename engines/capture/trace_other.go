//go:build !(linux && amd64)

package capture

import (
	"fmt"
	"runtime"
)

// Trace needs ptrace and the x86_64 register layout; elsewhere it refuses.
func Trace(o TraceOptions) (int, error) {
	return 0, fmt.Errorf("%w: capture run decodes x86_64 Linux syscalls, and this is %s/%s", ErrTraceDenied, runtime.GOOS, runtime.GOARCH)
}
