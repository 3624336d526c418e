package daemon

import "testing"

// TestDaemonKindsReserved: every kind the daemon writes is one emit refuses
// as the daemon's.
func TestDaemonKindsReserved(t *testing.T) {
	s := &Server{}
	for _, k := range Kinds() {
		if owner, ok := s.reservedBy(k); !ok || owner != "the daemon" {
			t.Errorf("reservedBy(%s) = %q, %v; want the daemon's", k, owner, ok)
		}
	}
}
