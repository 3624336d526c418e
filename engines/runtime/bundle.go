package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerCaps are the capabilities Docker gives a container by default.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// cgroupsPath is where runc puts a container's cgroup: /cairn/<id> in
// every hierarchy, so the capture engine's container.id finds the id in a
// process's cgroup path.
func cgroupsPath(id string) string { return "/cairn/" + id }

// bundleSpec builds the OCI runtime config of c, whose rootfs is mounted
// at dir/rootfs. netns is the network namespace to join ("" makes a new
// one; network=host joins none).
func bundleSpec(c *Container, dir, netns string) (*specs.Spec, error) {
	uid, gid, groups, err := resolveUser(filepath.Join(dir, "rootfs"), c.Config.User)
	if err != nil {
		return nil, err
	}
	caps := append([]string(nil), dockerCaps...)
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: c.Config.Cmd,
			Env:  c.Config.Env,
			Cwd:  c.Config.WorkingDir,
			User: specs.User{UID: uid, GID: gid, AdditionalGids: groups},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
		},
		Hostname: c.Config.Hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath(c.ID),
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
				"/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if s.Process.Cwd == "" {
		s.Process.Cwd = "/"
	}
	if s.Hostname == "" {
		s.Hostname = c.ID[:12]
	}
	// The files every container sees, as Docker gives them: its hostname,
	// a hosts file naming it, and the host's resolver configuration.
	for _, f := range []struct{ name, dst string }{
		{"hostname", "/etc/hostname"}, {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"},
	} {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: f.dst, Type: "bind", Source: filepath.Join(dir, f.name), Options: []string{"rbind", "rprivate"}})
	}
	for _, v := range c.Host.Binds {
		b, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		opts := []string{"rbind", "rprivate"}
		if b.readOnly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: b.dst, Type: "bind", Source: b.src, Options: opts})
	}
	switch c.Host.Network {
	case "host":
	default:
		ns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}
		s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
	}
	r := s.Linux.Resources
	if c.Host.Memory > 0 {
		limit := c.Host.Memory
		swap := limit // Docker's default: no swap beyond the limit
		r.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	if c.Host.NanoCPUs > 0 {
		period := uint64(100000)
		quota := c.Host.NanoCPUs * int64(period) / 1e9
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if c.Host.PidsLimit > 0 {
		limit := c.Host.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return s, nil
}

// resolveUser reads user= as Docker does: "uid[:gid]" with numbers, or
// names looked up in the image's /etc/passwd and /etc/group. Empty is
// root.
func resolveUser(rootfs, user string) (uid, gid uint32, groups []uint32, err error) {
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

// volume is one volume=SRC:DST[:ro].
type volume struct {
	src, dst string
	readOnly bool
}

func parseVolume(s string) (volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return volume{}, fmt.Errorf("volume=%s: want SRC:DST or SRC:DST:ro", s)
	}
	v := volume{src: parts[0], dst: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.readOnly = true
		case "rw":
		default:
			return volume{}, fmt.Errorf("volume=%s: the mode is ro or rw, not %q", s, parts[2])
		}
	}
	if !filepath.IsAbs(v.src) {
		return volume{}, fmt.Errorf("volume=%s: the source must be an absolute path on the host", s)
	}
	if !filepath.IsAbs(v.dst) {
		return volume{}, fmt.Errorf("volume=%s: the destination must be an absolute path in the container", s)
	}
	v.src, v.dst = filepath.Clean(v.src), filepath.Clean(v.dst)
	return v, nil
}

// parseSize reads a size as Docker's --memory does: a number of bytes with
// an optional unit, b, k, m, g (binary: 1k = 1024), also spelt KiB, MiB,
// GiB, KB, MB, GB (all binary, as Docker reads them).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(t[i:])
	if num == "" {
		return 0, fmt.Errorf("%q is not a size: give a number of bytes with an optional unit (256MiB, 512m, 1g)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: give a number of bytes with an optional unit (256MiB, 512m, 1g)", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q is not a size: the unit %q is not one of b, k, m, g, t (or KiB, MiB, GiB)", s, t[i:])
	}
	return int64(f * mult), nil
}

// restartPolicy is Docker's --restart.
type restartPolicy struct {
	Name              string `json:"Name"` // no, on-failure, always, unless-stopped
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

func parseRestart(s string) (restartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := restartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("restart=%s: the retry count after on-failure: is a number", s)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return p, fmt.Errorf("restart=%s: the policy is no, on-failure[:N], always or unless-stopped", s)
	}
	if hasMax {
		return p, fmt.Errorf("restart=%s: only on-failure takes a retry count", s)
	}
	return p, nil
}
