package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/journal"
)

// checkReadable refuses to read, on a caller's behalf, a configuration or
// var-file the caller could not read itself: the daemon reads as root.
// It checks the mode bits against the caller's uid, gid and supplementary
// groups (from /proc/PID/status); ACLs are not consulted.
func checkReadable(a journal.Actor, dir string, files []string) error {
	if a.UID == 0 || a.Via == "system" {
		return nil
	}
	groups := map[uint32]bool{uint32(a.GID): true}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.PID)); err == nil && a.PID > 0 {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
				for _, f := range strings.Fields(rest) {
					if g, err := strconv.ParseUint(f, 10, 32); err == nil {
						groups[uint32(g)] = true
					}
				}
			}
		}
	}
	may := func(p string, bit uint32) error {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return nil // reading it reports the error
		}
		shift := uint32(0)
		switch {
		case st.Uid == uint32(a.UID):
			shift = 6
		case groups[st.Gid]:
			shift = 3
		}
		if st.Mode>>shift&bit == 0 {
			return wire.Errorf(wire.PermissionDenied, "%s is not readable by uid %d; the daemon reads configurations only where the caller may", p, a.UID)
		}
		return nil
	}
	if dir != "" {
		if err := may(dir, 5); err != nil {
			return err
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".hcl") {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, f := range files {
		if err := may(f, 4); err != nil {
			return err
		}
	}
	return nil
}
