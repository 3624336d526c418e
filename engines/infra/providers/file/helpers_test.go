package fileprovider

import (
	"context"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

var ctx = context.Background()

// registered returns the file provider as the engine finds it.
func registered(t *testing.T) provider.Provider {
	t.Helper()
	p, ok := provider.All()["file"]
	if !ok {
		t.Fatal(`provider "file" is not registered`)
	}
	return p
}

func resource(t *testing.T, typ string) provider.Resource {
	t.Helper()
	r, ok := registered(t).Resources()[typ]
	if !ok {
		t.Fatalf("resource type %q missing", typ)
	}
	return r
}

func open(t *testing.T) provider.Session {
	t.Helper()
	s, err := registered(t).Open(ctx, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// statOf is what the kernel says of path.
type statOf struct {
	mode     uint32 // permission bits with setuid, setgid, sticky
	uid, gid int
	ino      uint64
}

func stat(t *testing.T, path string) statOf {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return statOf{mode: st.Mode & 0o7777, uid: int(st.Uid), gid: int(st.Gid), ino: st.Ino}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// entries lists dir, so a test sees any temporary file left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	return names
}

func wantEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), substr) {
		t.Fatalf("error = %v, want one containing %q", err, substr)
	}
}

// needRoot skips tests that chown.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
}

// unnamedIDs returns a uid and a gid the host has no names for.
func unnamedIDs(t *testing.T) (int, int) {
	t.Helper()
	for id := 54321; id < 54400; id++ {
		s := strconv.Itoa(id)
		if _, err := user.LookupId(s); err != nil {
			if _, err := user.LookupGroupId(s); err != nil {
				return id, id
			}
		}
	}
	t.Skip("no unnamed uid found")
	return 0, 0
}

// named returns a user other than root and its primary group, by name
// and id.
func named(t *testing.T) (u *user.User, g *user.Group) {
	t.Helper()
	for _, name := range []string{"daemon", "bin", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			continue
		}
		return u, g
	}
	t.Skip("no named user besides root")
	return nil, nil
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
