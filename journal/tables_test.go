package journal

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestTablesHoldOneKeyFamily checks that no sstable spans records and
// index keys: a flush's records then cover seqs no other table has, so
// pebble moves them down the levels instead of rewriting them with the
// index keys they would otherwise overlap (splitByFamily).
func TestTablesHoldOneKeyFamily(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	for _, name := range []string{Capture, Audit} {
		s := j.Stream(name)
		for i := range 5 {
			var bodies []*Body
			for k := range 50 {
				bodies = append(bodies, body(name+".sample", fmt.Sprint("cpu/", k), map[string]any{"i": int64(i)}))
			}
			mustAppend(t, s, bodies...)
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		levels, err := s.db.SSTables()
		if err != nil {
			t.Fatal(err)
		}
		families := map[string]bool{}
		for _, level := range levels {
			for _, tbl := range level {
				lo, hi := tbl.Smallest.UserKey, tbl.Largest.UserKey
				if !bytes.Equal(lo[:2], hi[:2]) {
					t.Errorf("%s: table %s spans %q to %q", name, tbl.FileNum, lo, hi)
				}
				families[string(lo[:2])] = true
			}
		}
		if !families["e/"] || !families["k/"] {
			t.Errorf("%s: tables of families %v, want e/ and k/ among them", name, families)
		}
	}
}
