// Package mountinfo reads the kernel's table of a process's mounts,
// /proc/PID/mountinfo (proc(5)): one line a mount, "id parent maj:min
// root mountpoint options [optional fields…] - fstype source
// superoptions", paths with octal escapes (\040 for a space).
package mountinfo

import (
	"os"
	"strconv"
	"strings"
)

// Mount is one line of mountinfo, its paths unescaped.
type Mount struct {
	// Root is the directory of the filesystem that appears at MountPoint
	// ("/" unless a bind mount or a private cgroup view shows less).
	Root       string
	MountPoint string
	FSType     string
	Source     string
	// SuperOptions are the filesystem's own options ("rw,memory" for a
	// cgroup v1 hierarchy mounting the memory controller).
	SuperOptions string
}

// Parse returns the mounts of mountinfo's contents b, in its order; a line
// without the fields every mount has is skipped.
func Parse(b []byte) []Mount {
	var out []Mount
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := Mount{Root: Unescape(f[3]), MountPoint: Unescape(f[4]), FSType: g[0]}
		if len(g) > 1 {
			m.Source = Unescape(g[1])
		}
		if len(g) > 2 {
			m.SuperOptions = g[2]
		}
		out = append(out, m)
	}
	return out
}

// Self returns the mounts this process sees.
func Self() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return Parse(b), nil
}

// Mounted reports whether path is a mount point this process sees; false
// when mountinfo cannot be read.
func Mounted(path string) bool {
	mounts, err := Self()
	if err != nil {
		return false
	}
	for _, m := range mounts {
		if m.MountPoint == path {
			return true
		}
	}
	return false
}

// Unescape undoes the octal escapes (\040 for a space, \011 a tab, \012 a
// newline, \134 a backslash) that mountinfo writes in paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
