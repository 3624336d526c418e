package fileprovider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func TestDirectoryLifecycle(t *testing.T) {
	r, s := resource(t, "directory"), open(t)
	parent := t.TempDir()
	path := filepath.Join(parent, "conf.d")
	// 0777 is beyond the umask: the mode is set, not asked of mkdir.
	planned := provider.Values{"path": path, "mode": "0777"}
	if err := r.Validate(planned, nil); err != nil {
		t.Fatal(err)
	}
	id, err := r.ID(planned)
	if err != nil || id != path {
		t.Fatalf("ID = %q, %v", id, err)
	}
	if _, found, err := r.Read(ctx, s, id); err != nil || found {
		t.Fatalf("Read before create: found=%v, %v", found, err)
	}
	got, err := r.Create(ctx, s, planned)
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, path)
	if st.mode != 0o777 {
		t.Errorf("mode on disk = %04o, want 0777", st.mode)
	}
	want := provider.Values{"path": path, "mode": "0777", "owner": formatOwner(os.Geteuid(), os.Getegid())}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Create returned %v, want %v", got, want)
	}
	read, found, err := r.Read(ctx, s, id)
	if err != nil || !found || fmt.Sprint(read) != fmt.Sprint(want) {
		t.Errorf("Read = %v, %v, %v; want %v", read, found, err, want)
	}

	next := planned.Clone()
	next["mode"] = "0750"
	got, err = r.Update(ctx, s, id, read, next)
	if err != nil {
		t.Fatal(err)
	}
	if st := stat(t, path); st.mode != 0o750 || got.String("mode") != "0750" {
		t.Errorf("mode after update = %04o (returned %q)", st.mode, got.String("mode"))
	}

	if err := r.Delete(ctx, s, id, got); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, parent)
	if err := r.Delete(ctx, s, id, got); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

func TestDirectoryDefaultMode(t *testing.T) {
	r, s := resource(t, "directory"), open(t)
	path := filepath.Join(t.TempDir(), "d")
	if _, err := r.Create(ctx, s, provider.Values{"path": path}); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, path); st.mode != 0o755 {
		t.Errorf("mode = %04o, want 0755", st.mode)
	}
}

func TestDirectoryOwner(t *testing.T) {
	needRoot(t)
	r, s := resource(t, "directory"), open(t)
	path := filepath.Join(t.TempDir(), "shared")
	uid, gid := unnamedIDs(t)
	numeric := fmt.Sprintf("%d:%d", uid, gid)
	got, err := r.Create(ctx, s, provider.Values{"path": path, "mode": "2775", "owner": numeric})
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, path)
	if st.uid != uid || st.gid != gid || st.mode != 0o2775 || got.String("owner") != numeric {
		t.Errorf("created %d:%d %04o owner %q, want %s 2775", st.uid, st.gid, st.mode, got.String("owner"), numeric)
	}
	u, g := named(t)
	planned := got.Clone()
	planned["owner"] = u.Username
	got, err = r.Update(ctx, s, path, got, planned)
	if err != nil {
		t.Fatal(err)
	}
	st = stat(t, path)
	if st.uid != atoi(t, u.Uid) || st.gid != atoi(t, g.Gid) || st.mode != 0o2775 {
		t.Errorf("after update %d:%d %04o, want %s:%s 2775", st.uid, st.gid, st.mode, u.Uid, g.Gid)
	}
	if want := u.Username + ":" + g.Name; got.String("owner") != want {
		t.Errorf("owner read back as %q, want %q", got.String("owner"), want)
	}
}

func TestDirectoryNotEmpty(t *testing.T) {
	r, s := resource(t, "directory"), open(t)
	path := filepath.Join(t.TempDir(), "d")
	v, err := r.Create(ctx, s, provider.Values{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "theirs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.Delete(ctx, s, path, v)
	wantErr(t, err, "directory "+path+" is not empty: cairn removes only what it made; empty it first")
	wantEntries(t, path, "theirs")
}

func TestDirectoryRefuses(t *testing.T) {
	r, s := resource(t, "directory"), open(t)
	dir := t.TempDir()

	missing := filepath.Join(dir, "a")
	_, err := r.Create(ctx, s, provider.Values{"path": filepath.Join(missing, "b")})
	wantErr(t, err, "parent directory "+missing+" does not exist; declare a directory resource for it")
	wantEntries(t, dir)

	if _, err := r.Create(ctx, s, provider.Values{"path": dir}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Create of an existing directory: %v", err)
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, err string }{
		{file, file + " is a regular file, not a directory"},
		{link, link + " is a symbolic link, not a directory"},
	} {
		if _, _, err := r.Read(ctx, s, tc.path); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Read %s: %v", tc.path, err)
		}
		if err := r.Delete(ctx, s, tc.path, nil); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Delete %s: %v", tc.path, err)
		}
	}
	wantEntries(t, dir, "file", "link")
}
