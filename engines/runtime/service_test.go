package runtime

import (
	"testing"
)

// TestContainersService: the runtime.containers service lists every
// container with its cgroup path and state, sorted by name.
func TestContainersService(t *testing.T) {
	tab := &containers{byID: map[string]*entry{}}
	for _, c := range []Container{
		{ID: "b" + zeros(63), Name: "web", Image: "busybox", State: State{Running: true, Pid: 42}, Host: Host{Memory: 1 << 20}},
		{ID: "a" + zeros(63), Name: "api", Image: "alpine"},
	} {
		tab.byID[c.ID] = &entry{c: c}
	}
	got := (&Service{m: &module{table: tab}}).Containers()
	if len(got) != 2 || got[0].Name != "api" || got[1].Name != "web" {
		t.Fatalf("%+v", got)
	}
	w := got[1]
	if w.Cgroup != "/cairn/b"+zeros(63) || !w.Running || w.Pid != 42 || w.MemoryLimit != 1<<20 || w.Image != "busybox" {
		t.Errorf("web: %+v", w)
	}
}

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}
