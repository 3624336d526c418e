package runtime

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cairnhq/cairn/engines/runtime/oci"
)

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
	caps := append([]string(nil), oci.DockerCaps...)
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
		Mounts:   oci.DefaultMounts(),
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath(c.ID),
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   oci.MaskedPaths(),
			ReadonlyPaths: oci.ReadonlyPaths(),
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

// resolveUser is oci.ResolveUser, kept under its old name for the
// runtime's callers.
func resolveUser(rootfs, user string) (uid, gid uint32, groups []uint32, err error) {
	return oci.ResolveUser(rootfs, user)
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
