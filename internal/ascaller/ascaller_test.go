package ascaller

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root (CI runs as root)")
	}
}

// TestKernelJudges: as uid 65534 a 0600 root file and a file inside a 0700
// directory cannot be read, nor a file created in a root directory, nor a
// symlink followed into a directory the user cannot search; the same work
// as root succeeds; and nothing leaks to other goroutines.
func TestKernelJudges(t *testing.T) {
	requireRoot(t)
	// t.TempDir's parent is 0700: make a directory nobody can search.
	dir, err := os.MkdirTemp("", "ascaller-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o700)
	inside := filepath.Join(private, "readable")
	os.WriteFile(inside, []byte("r"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(inside, link)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("o"), 0o644)

	nobody := Cred{UID: 65534, GID: 65534}
	for _, p := range []string{secret, inside, link} {
		err := Do(nobody, func() error { _, err := os.ReadFile(p); return err })
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("read %s as nobody: %v, want permission denied", p, err)
		}
	}
	if err := Do(nobody, func() error { return os.WriteFile(filepath.Join(dir, "new"), nil, 0o644) }); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("create in a root directory as nobody: %v, want permission denied", err)
	}
	if err := Do(nobody, func() error { _, err := os.ReadFile(open); return err }); err != nil {
		t.Errorf("read a world-readable file as nobody: %v", err)
	}
	// A group grant is honoured through the supplementary groups.
	os.Chown(secret, 0, 4242)
	os.Chmod(secret, 0o640)
	if err := Do(Cred{UID: 65534, GID: 65534, Groups: []int{4242}}, func() error { _, err := os.ReadFile(secret); return err }); err != nil {
		t.Errorf("read a group-readable file as a member: %v", err)
	}
	// The daemon's own threads keep root.
	if _, err := os.ReadFile(inside); err != nil {
		t.Errorf("root lost access after Do: %v", err)
	}
	// Files created as the caller belong to the caller.
	os.Chmod(dir, 0o777)
	made := filepath.Join(dir, "made")
	if err := Do(nobody, func() error { return os.WriteFile(made, nil, 0o644) }); err != nil {
		t.Fatal(err)
	}
	var st unixStat
	if err := stat(made, &st); err != nil || st.uid != 65534 {
		t.Errorf("file made as nobody: uid %d, %v", st.uid, err)
	}
}

func TestPanicIsAnError(t *testing.T) {
	requireRoot(t)
	err := Do(Cred{UID: 65534, GID: 65534}, func() error { panic("boom") })
	if err == nil {
		t.Fatal("a panic in fn was not reported")
	}
}

func TestSameUserRunsDirectly(t *testing.T) {
	ran := false
	if err := Do(Cred{UID: os.Geteuid(), GID: os.Getegid()}, func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("ran %v, err %v", ran, err)
	}
}
