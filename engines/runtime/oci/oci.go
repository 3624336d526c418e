// Package oci holds what every runc container cairn makes has in common,
// whichever engine makes it (the runtime's containers, the build engine's
// RUN steps): Docker's default capabilities, mounts and masked paths, and
// how a user= is resolved against an image's /etc/passwd.
package oci

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DockerCaps are the capabilities Docker gives a container by default.
var DockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMounts are the file systems every container gets, as Docker's:
// /proc, /dev and its pts, shm and mqueue, a read-only /sys and cgroup.
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// MaskedPaths are the paths Docker hides from a container.
func MaskedPaths() []string {
	return []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/sys/firmware", "/proc/scsi"}
}

// ReadonlyPaths are the paths Docker makes read-only in a container.
func ReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// ResolveUser reads user= as Docker does: "uid[:gid]" with numbers, or
// names looked up in the image's /etc/passwd and /etc/group. Empty is
// root.
func ResolveUser(rootfs, user string) (uid, gid uint32, groups []uint32, err error) {
	if user == "" {
		return 0, 0, nil, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		uid = uint32(n)
		gid = uint32(n)
		if pw, ok := lookupPasswd(rootfs, func(f []string) bool { return f[2] == name }); ok {
			g, _ := strconv.ParseUint(pw[3], 10, 32)
			gid = uint32(g)
		}
	} else {
		pw, ok := lookupPasswd(rootfs, func(f []string) bool { return f[0] == name })
		if !ok {
			return 0, 0, nil, fmt.Errorf("user=%s: no user %q in the image's /etc/passwd (give a number)", user, name)
		}
		u, _ := strconv.ParseUint(pw[2], 10, 32)
		g, _ := strconv.ParseUint(pw[3], 10, 32)
		uid, gid = uint32(u), uint32(g)
	}
	if hasGroup {
		if n, err := strconv.ParseUint(group, 10, 32); err == nil {
			gid = uint32(n)
		} else {
			gr, ok := lookupColonFile(filepath.Join(rootfs, "etc/group"), func(f []string) bool { return f[0] == group })
			if !ok {
				return 0, 0, nil, fmt.Errorf("user=%s: no group %q in the image's /etc/group (give a number)", user, group)
			}
			g, _ := strconv.ParseUint(gr[2], 10, 32)
			gid = uint32(g)
		}
	}
	return uid, gid, nil, nil
}

func lookupPasswd(rootfs string, match func([]string) bool) ([]string, bool) {
	return lookupColonFile(filepath.Join(rootfs, "etc/passwd"), match)
}

// lookupColonFile finds the first line of an /etc/passwd-style file whose
// fields match. The file is the image's: it is read through the mounted
// rootfs, and a symlink in it could point anywhere on the host, so only a
// regular file is read.
func lookupColonFile(path string, match func([]string) bool) ([]string, bool) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 4 && match(fields) {
			return fields, true
		}
	}
	return nil, false
}
