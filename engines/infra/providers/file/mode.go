package fileprovider

import (
	"fmt"
	"io/fs"
)

// parseMode parses a configured mode: four octal digits, such as "0644"
// or "2775". Only that form is accepted because Read returns it, and a
// configured "644" would otherwise differ from reality on every plan.
func parseMode(s string) (uint32, error) {
	var m uint32
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, fmt.Errorf("mode %q: write it as four octal digits, such as \"0644\"", s)
		}
		m = m<<3 | uint32(c-'0')
	}
	switch {
	case len(s) == 3:
		return 0, fmt.Errorf("mode %q: write it as four octal digits, \"0%s\"", s, s)
	case len(s) != 4:
		return 0, fmt.Errorf("mode %q: write it as four octal digits, such as \"0644\"", s)
	}
	return m, nil
}

// formatMode formats unix permission bits as parseMode reads them.
func formatMode(m uint32) string { return fmt.Sprintf("%04o", m&0o7777) }

// toFileMode converts unix permission bits (with setuid, setgid and
// sticky) to Go's fs.FileMode, whose bits for those differ.
func toFileMode(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// fromFileMode is toFileMode's inverse.
func fromFileMode(fm fs.FileMode) uint32 {
	m := uint32(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// modeOf returns v's mode, or def when the configuration leaves it out.
func modeOf(v map[string]any, def string) (uint32, error) {
	s, ok := v["mode"].(string)
	if !ok {
		s = def
	}
	return parseMode(s)
}
