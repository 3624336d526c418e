package mountinfo

import "strings"

// CgroupMount is where a cgroup hierarchy is mounted: Dir is the mount
// point, Root the hierarchy's directory that appears there ("/" on a host,
// a container's own cgroup inside a container with a private view).
type CgroupMount struct {
	Dir, Root string
}

// Path is the directory of cgroup path under this mount, or "" when the
// path lies outside what the mount shows.
func (m CgroupMount) Path(path string) string {
	if m.Root != "/" {
		rest, ok := strings.CutPrefix(path, m.Root)
		if !ok || (rest != "" && rest[0] != '/') {
			return ""
		}
		path = rest
	}
	return strings.TrimRight(m.Dir+path, "/")
}

// CgroupV1 maps each cgroup v1 controller to the mount of its hierarchy; a
// hierarchy mounting several controllers ("cpu,cpuacct") appears under
// each, and the first mount of a controller wins. nil when there is none.
func CgroupV1(mounts []Mount) map[string]CgroupMount {
	var out map[string]CgroupMount
	for _, mi := range mounts {
		if mi.FSType != "cgroup" {
			continue
		}
		for opt := range strings.SplitSeq(mi.SuperOptions, ",") {
			if opt == "rw" || opt == "ro" || opt == "" {
				continue
			}
			if out == nil {
				out = map[string]CgroupMount{}
			}
			if _, dup := out[opt]; !dup {
				out[opt] = CgroupMount{Dir: mi.MountPoint, Root: mi.Root}
			}
		}
	}
	return out
}
