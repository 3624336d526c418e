package netprovider

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a watch or a session leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
