package journal

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
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

// TestAuditLookupsHitTheBlockCache: once the audit stream's memtable has
// grown to its full size, a lookup of a key in an sstable still finds its
// blocks in the block cache. pebble reserves the memtables' size in that
// cache; when the reservation took all of it, every lookup (a KV put reads
// its key in Decide) read the table's index blocks from the file again.
func TestAuditLookupsHitTheBlockCache(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem()))
	defer j.Close()
	db := j.Stream(Audit).db
	// 128 MiB of writes: memtables start at 256 KiB and double, so pebble
	// allocates one of the full 64 MiB on the way.
	val := make([]byte, 1<<20)
	for i := range 128 {
		if err := db.Set(fmt.Appendf(nil, "x/%04d", i), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	key := []byte("p/test/key")
	if err := db.Set(key, []byte("v"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	get := func() {
		v, closer, err := db.Get(key)
		if err != nil || string(v) != "v" {
			t.Fatalf("get: %q %v", v, err)
		}
		closer.Close()
	}
	get() // the table's blocks enter the cache
	before := db.Metrics().BlockCache
	for range 10 {
		get()
	}
	after := db.Metrics().BlockCache
	if misses := after.Misses - before.Misses; misses > 0 {
		t.Fatalf("%d block cache misses in 10 lookups of one key (memtables %d bytes; cache %d bytes, %d blocks)",
			misses, db.Metrics().MemTable.Size, after.Size, after.Count)
	}
}
