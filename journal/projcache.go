package journal

import (
	"bytes"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// projCache holds projection values as the applied state has them, for the
// keys the engines' Decide and Fold read: a KV put reads its key's current
// version in Decide and again in Fold, and in pebble that lookup reads
// index, filter and data blocks of tables that compactions keep rewriting
// (a tenth of the daemon's CPU under etcd's put benchmark). It is etcd's
// answer too: its key index lives in memory.
//
// Only the committer touches it. A key enters when it is read (its value,
// or that it is absent); a build's writes change it only once the build's
// batch is applied to pebble (overlay.commit; a group of appends is built
// on the one before while that one's fsync runs, and if the fsync fails
// the stream stops and the cache is read no more), and only for keys it
// holds, so keys written and never read (a KV key's history) take no room. Past limit
// bytes, random entries go until it is down to three quarters.
type projCache struct {
	m     map[string]cachedValue
	bytes int
	limit int
	// subs counts the keys held in each subspace (subspaceOf), so that a
	// range delete within a subspace the cache holds nothing of (the KV's
	// lease → keys index, which is only ever iterated) costs no scan.
	subs map[string]int
}

// subspaceOf returns the subspace of a projection key: its engine prefix
// "p/<engine>/" and the byte after it ("p/kv/k", "p/kv/x"), or the whole
// key when it is shorter.
func subspaceOf(k string) string {
	if !strings.HasPrefix(k, "p/") {
		return k
	}
	i := strings.IndexByte(k[2:], '/')
	if i < 0 {
		return k
	}
	return k[:min(len(k), 2+i+2)]
}

// rangeIsCold reports whether the cache holds no key in [lo, hi) because
// the range lies within one subspace it holds no key of.
func (c *projCache) rangeIsCold(lo, hi string) bool {
	sub := subspaceOf(lo)
	// A subspace proper: "p/", an engine name, "/" and one byte.
	if strings.Count(sub, "/") != 2 || !strings.HasSuffix(sub[:len(sub)-1], "/") {
		return false
	}
	// lo starts with sub; the range stays in it if hi does not pass its end.
	return c.subs[sub] == 0 && hi <= string(PrefixEnd([]byte(sub)))
}

type cachedValue struct {
	val []byte
	ok  bool // the key exists
}

// cacheEntryOverhead approximates what an entry costs beyond its key and
// value: the map slot, the string and slice headers.
const cacheEntryOverhead = 64

func newProjCache(limit int) *projCache {
	if limit <= 0 {
		return nil
	}
	return &projCache{m: make(map[string]cachedValue), limit: limit, subs: make(map[string]int)}
}

func (c *projCache) set(k string, v cachedValue) {
	if old, ok := c.m[k]; ok {
		c.bytes -= len(k) + len(old.val) + cacheEntryOverhead
	} else {
		c.subs[subspaceOf(k)]++
	}
	c.m[k] = v
	c.bytes += len(k) + len(v.val) + cacheEntryOverhead
	if c.bytes > c.limit {
		for k2 := range c.m {
			if c.bytes <= c.limit*3/4 {
				break
			}
			c.drop(k2)
		}
	}
}

func (c *projCache) drop(k string) {
	old, ok := c.m[k]
	if !ok {
		return
	}
	delete(c.m, k)
	c.bytes -= len(k) + len(old.val) + cacheEntryOverhead
	sub := subspaceOf(k)
	if c.subs[sub]--; c.subs[sub] <= 0 {
		delete(c.subs, sub)
	}
}

// clear forgets everything: a rebuild rewrote every projection.
func (c *projCache) clear() {
	if c != nil {
		clear(c.m)
		clear(c.subs)
		c.bytes = 0
	}
}

// overlay is one build's view of the cache: the projection keys the build
// wrote, over the applied values. A key written in the build is read from
// the build's batch, or from the value kept here when the cache held the
// key (so that commit can update it).
type overlay struct {
	c      *projCache
	writes map[string]overlayWrite
	ranges [][2][]byte // [lo, hi) deleted, earlier writes in them dropped
}

type overlayWrite struct {
	cachedValue
	known bool // val/ok hold the written value; else read it from the batch
}

func (c *projCache) overlay() *overlay {
	if c == nil {
		return nil
	}
	return &overlay{c: c, writes: make(map[string]overlayWrite)}
}

// get returns a copy of key's value as the batch b (over the applied
// state) has it.
func (o *overlay) get(b pebble.Reader, key []byte) ([]byte, bool, error) {
	if w, ok := o.writes[string(key)]; ok {
		if !w.known {
			return readerGet(b, key)
		}
		return bytes.Clone(w.val), w.ok, nil
	}
	for _, r := range o.ranges {
		if bytes.Compare(key, r[0]) >= 0 && bytes.Compare(key, r[1]) < 0 {
			return nil, false, nil
		}
	}
	if v, ok := o.c.m[string(key)]; ok {
		return bytes.Clone(v.val), v.ok, nil
	}
	// Written neither by this build nor by a range delete of it: the
	// batch reads the applied value.
	val, ok, err := readerGet(b, key)
	if err != nil {
		return nil, false, err
	}
	o.c.set(string(key), cachedValue{val: bytes.Clone(val), ok: ok})
	return val, ok, nil
}

func (o *overlay) set(key, value []byte) {
	k := string(key)
	w := overlayWrite{cachedValue: cachedValue{ok: true}}
	_, cached := o.c.m[k]
	if prev, ok := o.writes[k]; cached || ok && prev.known {
		w.known = true
		if len(value) > 0 { // an empty value reads back nil, as from pebble
			w.val = bytes.Clone(value)
		}
	}
	o.writes[k] = w
}

func (o *overlay) delete(key []byte) {
	o.writes[string(key)] = overlayWrite{known: true}
}

func (o *overlay) deleteRange(lo, hi []byte) {
	for k := range o.writes {
		if k >= string(lo) && k < string(hi) {
			delete(o.writes, k)
		}
	}
	o.ranges = append(o.ranges, [2][]byte{bytes.Clone(lo), bytes.Clone(hi)})
}

// commit applies the build's writes to the cache once its batch is
// applied to pebble: range deletes first (the writes left are later than them), then
// each written key the cache holds.
func (o *overlay) commit() {
	if o == nil {
		return
	}
	c := o.c
	for _, r := range o.ranges {
		if c.rangeIsCold(string(r[0]), string(r[1])) {
			continue
		}
		for k := range c.m {
			if k >= string(r[0]) && k < string(r[1]) {
				c.drop(k)
			}
		}
	}
	for k, w := range o.writes {
		if _, cached := c.m[k]; !cached {
			continue
		}
		if w.known {
			c.set(k, w.cachedValue)
		} else {
			c.drop(k)
		}
	}
}
