package fileprovider

import (
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// PrivateAttrs: the content of a file other users cannot read is kept in
// the journal as a digest (docs/security.md), so reading the journal never
// shows more than reading the file would.
func (fileResource) PrivateAttrs(v provider.Values) []string { return privateContent(v) }

// PrivateAttrs: as for the file resource, a data "file" of a file other
// users cannot read has a sensitive content (an output of it needs
// sensitive = true, and shows a digest).
func (fileData) PrivateAttrs(v provider.Values) []string { return privateContent(v) }

func privateContent(v provider.Values) []string {
	if worldReadable(v.String("path"), v.String("mode")) {
		return nil
	}
	return []string{"content"}
}

// worldReadable reports whether any local user may read the file at path
// with the given mode: read permission for others on the file and search
// permission for others on every directory above it. It looks at
// permission bits only (no ACLs); anything it cannot tell counts as
// private.
func worldReadable(path, mode string) bool {
	m, err := parseMode(mode)
	if err != nil || m&0o004 == 0 || !filepath.IsAbs(path) {
		return false
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
	}
}
