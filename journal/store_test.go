package journal

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// rawPebble opens a stream's pebble instance directly, with the journal
// closed, so tests can tamper with what is stored.
func rawPebble(t testing.TB, fs vfs.FS, stream string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(fs.PathJoin("/data", stream), &pebble.Options{FS: fs, Logger: pebbleLogger{log: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
