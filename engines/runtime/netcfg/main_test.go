package netcfg

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a forward, a test server or a namespace thread
// leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
