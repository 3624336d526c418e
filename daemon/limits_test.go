package daemon

import (
	"testing"

	"github.com/cairnhq/cairn/client/wire"
)

func TestConnLimits(t *testing.T) {
	l := newConnLimits(5, 2)
	var releases []func()
	take := func(uid int) error {
		rel, err := l.acquire(uid)
		if err == nil {
			releases = append(releases, rel)
		}
		return err
	}
	for i := range 2 {
		if err := take(1000); err != nil {
			t.Fatalf("uid 1000's connection %d refused: %v", i+1, err)
		}
	}
	if err := take(1000); wire.CodeOf(err) != wire.ResourceExhausted {
		t.Fatalf("uid 1000's third connection: %v, want resource_exhausted", err)
	}
	// Root is held to the total only.
	for i := range 3 {
		if err := take(0); err != nil {
			t.Fatalf("root's connection %d refused under the total: %v", i+1, err)
		}
	}
	if err := take(0); wire.CodeOf(err) != wire.ResourceExhausted {
		t.Fatalf("connection over the total: %v", err)
	}
	releases[0]()
	releases[0]() // a second release is a no-op
	if err := take(1000); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if l.open != 5 || l.byUID[1000] != 2 {
		t.Fatalf("open %d, uid 1000 %d", l.open, l.byUID[1000])
	}
}

func TestConnBudget(t *testing.T) {
	if got := connBudget(20000, 2, DefaultMaxConns); got != DefaultMaxConns {
		t.Errorf("budget at 20000 descriptors: %d", got)
	}
	if got := connBudget(4096, 2, DefaultMaxConns); got >= 4096-1024 {
		t.Errorf("budget at 4096 descriptors: %d leaves no reserve", got)
	}
	if got := connBudget(100, 2, 10); got != 10 {
		t.Errorf("budget at 100 descriptors, 10 configured: %d", got)
	}
}
