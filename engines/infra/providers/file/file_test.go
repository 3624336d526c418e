package fileprovider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func TestFileLifecycle(t *testing.T) {
	r, s := resource(t, "file"), open(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "motd")
	planned := provider.Values{"path": path, "content": "hello\n", "mode": "0640"}

	id, err := r.ID(planned)
	if err != nil || id != path {
		t.Fatalf("ID = %q, %v; want %q", id, err, path)
	}
	if err := r.Validate(planned, nil); err != nil {
		t.Fatal(err)
	}
	if _, found, err := r.Read(ctx, s, id); err != nil || found {
		t.Fatalf("Read before create: found=%v, %v", found, err)
	}

	got, err := r.Create(ctx, s, planned)
	if err != nil {
		t.Fatal(err)
	}
	if c := readString(t, path); c != "hello\n" {
		t.Errorf("content on disk = %q", c)
	}
	st := stat(t, path)
	if st.mode != 0o640 {
		t.Errorf("mode on disk = %04o, want 0640", st.mode)
	}
	sum := sha256.Sum256([]byte("hello\n"))
	want := provider.Values{
		"path":    path,
		"content": "hello\n",
		"mode":    "0640",
		"owner":   formatOwner(os.Geteuid(), os.Getegid()),
		"sha256":  hex.EncodeToString(sum[:]),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Create returned %v\nwant %v", got, want)
	}
	read, found, err := r.Read(ctx, s, id)
	if err != nil || !found || fmt.Sprint(read) != fmt.Sprint(want) {
		t.Errorf("Read = %v, %v, %v\nwant %v", read, found, err, want)
	}
	wantEntries(t, dir, "motd")

	// A content change writes a new file in place of the old one.
	next := planned.Clone()
	next["content"] = "bye\n"
	got, err = r.Update(ctx, s, id, read, next)
	if err != nil {
		t.Fatal(err)
	}
	if c := readString(t, path); c != "bye\n" {
		t.Errorf("content after update = %q", c)
	}
	after := stat(t, path)
	if after.ino == st.ino {
		t.Error("content update wrote into the old inode, not atomically")
	}
	if after.mode != 0o640 {
		t.Errorf("mode after content update = %04o, want 0640", after.mode)
	}
	if sum := sha256.Sum256([]byte("bye\n")); got.String("sha256") != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 after update = %s", got.String("sha256"))
	}
	wantEntries(t, dir, "motd")

	// A mode change is a chmod: same inode.
	prior := got
	next = next.Clone()
	next["mode"] = "0600"
	got, err = r.Update(ctx, s, id, prior, next)
	if err != nil {
		t.Fatal(err)
	}
	st = stat(t, path)
	if st.mode != 0o600 || got.String("mode") != "0600" {
		t.Errorf("mode after update = %04o (returned %q), want 0600", st.mode, got.String("mode"))
	}
	if st.ino != after.ino {
		t.Error("a mode change rewrote the file")
	}

	if err := r.Delete(ctx, s, id, got); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("file still there after delete: %v", err)
	}
	if _, found, err := r.Read(ctx, s, id); err != nil || found {
		t.Errorf("Read after delete: found=%v, %v", found, err)
	}
	// Deleting what is already gone is done.
	if err := r.Delete(ctx, s, id, got); err != nil {
		t.Errorf("second delete: %v", err)
	}
	wantEntries(t, dir)
}

func TestFileDefaults(t *testing.T) {
	r, s := resource(t, "file"), open(t)
	path := filepath.Join(t.TempDir(), "empty")
	// The engine fills defaults in, but a provider left alone uses them too.
	got, err := r.Create(ctx, s, provider.Values{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	if st := stat(t, path); st.mode != 0o644 {
		t.Errorf("mode = %04o, want 0644 whatever the umask", st.mode)
	}
	if c := readString(t, path); c != "" || got.String("content") != "" {
		t.Errorf("content = %q, returned %q", c, got.String("content"))
	}
	if got.String("sha256") != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("sha256 of nothing = %s", got.String("sha256"))
	}
}

func TestFileOwner(t *testing.T) {
	needRoot(t)
	r, s := resource(t, "file"), open(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	uid, gid := unnamedIDs(t)
	numeric := fmt.Sprintf("%d:%d", uid, gid)

	got, err := r.Create(ctx, s, provider.Values{"path": path, "content": "x", "mode": "4755", "owner": numeric})
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, path)
	if st.uid != uid || st.gid != gid || st.mode != 0o4755 {
		t.Errorf("created %d:%d %04o, want %s 4755", st.uid, st.gid, st.mode, numeric)
	}
	if got.String("owner") != numeric {
		t.Errorf("owner read back as %q, want %q: ids without names stay numbers", got.String("owner"), numeric)
	}

	// An owner change is a chown: same inode, and setuid survives the
	// kernel clearing it on chown.
	u, g := named(t)
	planned := got.Clone()
	planned["owner"] = u.Username + ":" + g.Name
	got2, err := r.Update(ctx, s, path, got, planned)
	if err != nil {
		t.Fatal(err)
	}
	st2 := stat(t, path)
	if st2.ino != st.ino {
		t.Error("an owner change rewrote the file")
	}
	if st2.uid != atoi(t, u.Uid) || st2.gid != atoi(t, g.Gid) {
		t.Errorf("owner on disk %d:%d, want %s:%s", st2.uid, st2.gid, u.Uid, g.Gid)
	}
	if st2.mode != 0o4755 {
		t.Errorf("mode after chown = %04o, want 4755", st2.mode)
	}
	if want := u.Username + ":" + g.Name; got2.String("owner") != want {
		t.Errorf("owner read back as %q, want %q", got2.String("owner"), want)
	}

	// A user alone means its primary group.
	planned = got2.Clone()
	planned["owner"] = "root"
	got3, err := r.Update(ctx, s, path, got2, planned)
	if err != nil {
		t.Fatal(err)
	}
	if st := stat(t, path); st.uid != 0 || st.gid != 0 {
		t.Errorf("owner root gave %d:%d, want 0:0", st.uid, st.gid)
	}

	// A content change with no owner configured keeps the file's owner.
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	planned = provider.Values{"path": path, "content": "y", "mode": "0644"}
	if _, err := r.Update(ctx, s, path, got3, planned); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, path); st.uid != uid || st.gid != gid || st.ino == st2.ino {
		t.Errorf("after rewrite %d:%d inode %d, want %d:%d in a new inode", st.uid, st.gid, st.ino, uid, gid)
	}

	// An unknown name fails before anything is written.
	other := filepath.Join(dir, "g")
	_, err = r.Create(ctx, s, provider.Values{"path": other, "owner": "no-such-user-cairn"})
	wantErr(t, err, `user "no-such-user-cairn" does not exist`)
	_, err = r.Create(ctx, s, provider.Values{"path": other, "owner": "root:no-such-group-cairn"})
	wantErr(t, err, `group "no-such-group-cairn" does not exist`)
	_, err = r.Create(ctx, s, provider.Values{"path": other, "owner": fmt.Sprint(uid)})
	wantErr(t, err, "has no user entry")
	wantEntries(t, dir, "f")
}

func TestFileMissingParent(t *testing.T) {
	r, s := resource(t, "file"), open(t)
	dir := t.TempDir()
	parent := filepath.Join(dir, "nope")
	_, err := r.Create(ctx, s, provider.Values{"path": filepath.Join(parent, "motd"), "content": "x"})
	wantErr(t, err, "parent directory "+parent+" does not exist; declare a directory resource for it")
	wantEntries(t, dir)

	// A parent that is a file is no directory either.
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = r.Create(ctx, s, provider.Values{"path": filepath.Join(parent, "motd")})
	wantErr(t, err, "parent "+parent+" is not a directory")
	// Nothing can be under a file, so reading there finds nothing.
	if _, found, err := r.Read(ctx, s, filepath.Join(parent, "motd")); err != nil || found {
		t.Errorf("Read under a file: found=%v, %v", found, err)
	}
}

func TestFileCreateRefusesExisting(t *testing.T) {
	r, s := resource(t, "file"), open(t)
	path := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(path, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.Create(ctx, s, provider.Values{"path": path, "content": "ours"})
	wantErr(t, err, path+" already exists: import it")
	if c := readString(t, path); c != "theirs" {
		t.Errorf("existing file clobbered: %q", c)
	}
}

func TestFileReadRefuses(t *testing.T) {
	r, s := resource(t, "file"), open(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("a", maxContent+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	exact := filepath.Join(dir, "exact")
	if err := os.WriteFile(exact, []byte(strings.Repeat("a", maxContent)), 0o644); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "binary")
	if err := os.WriteFile(binary, []byte{0xff, 0xfe, 'x'}, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(exact, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}

	if v, found, err := r.Read(ctx, s, exact); err != nil || !found || len(v.String("content")) != maxContent {
		t.Errorf("Read of a 1 MiB file: %v, %v", found, err)
	}
	for _, tc := range []struct{ path, err string }{
		{big, big + " is 1048577 bytes: the file provider manages UTF-8 text files up to 1 MiB"},
		{binary, binary + " is not valid UTF-8: the file provider manages UTF-8 text files up to 1 MiB"},
		{link, link + " is a symbolic link, not a regular file"},
		{fifo, fifo + " is a named pipe, not a regular file"},
		{sub, sub + " is a directory, not a file"},
	} {
		_, found, err := r.Read(ctx, s, tc.path)
		if found || err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Read %s: found=%v, %v; want %q", tc.path, found, err, tc.err)
		}
	}

	// Update and Delete leave what is not a regular file alone.
	_, err := r.Update(ctx, s, sub, provider.Values{"path": sub}, provider.Values{"path": sub, "content": "x"})
	wantErr(t, err, "is a directory")
	wantErr(t, r.Delete(ctx, s, link, nil), "is not a regular file (a symbolic link)")
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("delete removed the symlink: %v", err)
	}

	// A big file is replaced whole by an update.
	if _, err := r.Update(ctx, s, big, provider.Values{"path": big}, provider.Values{"path": big, "content": "small"}); err != nil {
		t.Fatal(err)
	}
	if c := readString(t, big); c != "small" {
		t.Errorf("big file after update = %.10q", c)
	}
}

func TestFileUpdateGone(t *testing.T) {
	r, s := resource(t, "file"), open(t)
	path := filepath.Join(t.TempDir(), "gone")
	_, err := r.Update(ctx, s, path, provider.Values{"path": path}, provider.Values{"path": path, "content": "x"})
	wantErr(t, err, path+" no longer exists")
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("update created the file: %v", err)
	}
}

func TestWriteAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file goes: the rename fails after
	// the temporary file was written.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := writeAtomic(target, []byte("data"), 0o644, -1, -1)
	wantErr(t, err, "write "+target)
	wantEntries(t, dir, "target")

	// A write that works leaves the file alone.
	path := filepath.Join(dir, "ok")
	if err := writeAtomic(path, []byte("data"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, dir, "ok", "target")
	if st := stat(t, path); st.mode != 0o600 {
		t.Errorf("mode = %04o", st.mode)
	}
}

func TestFileValidate(t *testing.T) {
	r := resource(t, "file")
	for _, tc := range []struct {
		v     provider.Values
		known map[string]bool
		err   string
	}{
		{v: provider.Values{"path": "/etc/motd", "content": "x", "mode": "0600", "owner": "root:root"}},
		// path comes from another resource, unknown until apply.
		{v: provider.Values{}, known: map[string]bool{"path": true}},
		{v: provider.Values{}, err: "path is required"},
		{v: provider.Values{"path": "motd"}, err: `path "motd" is not absolute`},
		{v: provider.Values{"path": "/etc/motd", "mode": "644"}, err: `"0644"`},
		{v: provider.Values{"path": "/etc/motd", "mode": "0999"}, err: "four octal digits"},
		{v: provider.Values{"path": "/etc/motd", "owner": "a:b:c"}, err: `write "user", "user:group" or "uid:gid"`},
		{v: provider.Values{"path": "/etc/motd", "content": strings.Repeat("a", maxContent+1)}, err: "up to 1 MiB"},
	} {
		err := r.Validate(tc.v, tc.known)
		if tc.err == "" {
			if err != nil {
				t.Errorf("Validate(%v) = %v", tc.v, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Validate(%.60v) = %v; want %q", tc.v, err, tc.err)
		}
	}
	if _, err := r.ID(provider.Values{"path": "rel"}); err == nil {
		t.Error("ID of a relative path succeeded")
	}
}
