package mountinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	in := `22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 22 0:29 /cairn /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 1 0:40 / /tmp/a\040dir/rootfs rw,relatime - overlay overlay rw,lowerdir=/l
broken line without the separator
41 1 0:41 / - tmpfs
`
	want := []Mount{
		{Root: "/", MountPoint: "/sys", FSType: "sysfs", Source: "sysfs", SuperOptions: "rw"},
		{Root: "/cairn", MountPoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Source: "cgroup", SuperOptions: "rw,memory"},
		{Root: "/", MountPoint: "/tmp/a dir/rootfs", FSType: "overlay", Source: "overlay", SuperOptions: "rw,lowerdir=/l"},
	}
	if got := Parse([]byte(in)); !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:        "/plain",
		`/a\040b`:       "/a b",
		`/tab\011x`:     "/tab\tx",
		`/back\134s`:    `/back\s`,
		`/short\04`:     `/short\04`,
		`/notoctal\089`: `/notoctal\089`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMounted mounts a tmpfs on a directory whose name mountinfo escapes.
func TestMounted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := filepath.Join(t.TempDir(), "with space")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if Mounted(dir) {
		t.Fatalf("%s is a mount point before the mount", dir)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	if !Mounted(dir) {
		t.Fatalf("%s is not seen as a mount point", dir)
	}
}
