package fileprovider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// ownerSpec is a configured owner: a user and, optionally, a group, each
// a name or a number.
type ownerSpec struct {
	user, group string
}

// parseOwner parses "user", "user:group" or "uid:gid".
func parseOwner(s string) (ownerSpec, error) {
	u, g, colon := strings.Cut(s, ":")
	if u == "" || (colon && g == "") || strings.Contains(g, ":") {
		return ownerSpec{}, fmt.Errorf("owner %q: write \"user\", \"user:group\" or \"uid:gid\"", s)
	}
	return ownerSpec{user: u, group: g}, nil
}

// number parses a numeric uid or gid.
func number(s string) (int, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 { // (uid_t)-1 means "leave unchanged" to chown
		return 0, false
	}
	return int(n), true
}

// resolve turns o into ids through the host's user and group databases.
// A user alone means its primary group, as chown's "user:" does.
func (o ownerSpec) resolve() (uid, gid int, err error) {
	primary := ""
	if n, ok := number(o.user); ok {
		uid = n
		if o.group == "" {
			u, err := user.LookupId(o.user)
			if err != nil {
				return 0, 0, fmt.Errorf("owner %q: uid %s has no user entry to take a group from; write \"%s:GID\"", o.user, o.user, o.user)
			}
			primary = u.Gid
		}
	} else {
		u, err := user.Lookup(o.user)
		if err != nil {
			return 0, 0, lookupError("user", o.user, err)
		}
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return 0, 0, fmt.Errorf("user %q: uid %q is not a number", o.user, u.Uid)
		}
		primary = u.Gid
	}
	g := o.group
	if g == "" {
		g = primary
	}
	if n, ok := number(g); ok {
		return uid, n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, 0, lookupError("group", g, err)
	}
	if gid, err = strconv.Atoi(grp.Gid); err != nil {
		return 0, 0, fmt.Errorf("group %q: gid %q is not a number", g, grp.Gid)
	}
	return uid, gid, nil
}

func lookupError(what, name string, err error) error {
	var uu user.UnknownUserError
	var ug user.UnknownGroupError
	if errors.As(err, &uu) || errors.As(err, &ug) {
		return fmt.Errorf("%s %q does not exist on this host", what, name)
	}
	return fmt.Errorf("look up %s %q: %w", what, name, err)
}

// ownerOf resolves v's owner, or returns -1, -1 when the configuration
// leaves it out (whatever the object has is kept).
func ownerOf(v map[string]any) (uid, gid int, err error) {
	s, ok := v["owner"].(string)
	if !ok {
		return -1, -1, nil
	}
	o, err := parseOwner(s)
	if err != nil {
		return 0, 0, err
	}
	return o.resolve()
}

// formatOwner names uid and gid as "user:group", each part a name when
// the host resolves it and a number otherwise.
func formatOwner(uid, gid int) string {
	us, gs := strconv.Itoa(uid), strconv.Itoa(gid)
	if u, err := user.LookupId(us); err == nil {
		us = u.Username
	}
	if g, err := user.LookupGroupId(gs); err == nil {
		gs = g.Name
	}
	return us + ":" + gs
}

// meta is what the file and directory resources manage besides content.
type meta struct {
	mode     uint32
	uid, gid int
}

func metaOf(fi fs.FileInfo) meta {
	m := meta{mode: fromFileMode(fi.Mode()), uid: -1, gid: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.uid, m.gid = int(st.Uid), int(st.Gid)
	}
	return m
}

// setMeta changes path's owner and mode from cur to the wanted ones,
// touching only what differs. uid -1 keeps the owner.
func setMeta(path string, cur meta, mode uint32, uid, gid int) error {
	if uid >= 0 && (uid != cur.uid || gid != cur.gid) {
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
		// chown clears setuid and setgid on files: see what is left.
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		cur.mode = fromFileMode(fi.Mode())
	}
	if mode != cur.mode {
		return os.Chmod(path, toFileMode(mode))
	}
	return nil
}
