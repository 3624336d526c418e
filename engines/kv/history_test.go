package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// countingReader counts the projection entries a read visits.
type countingReader struct {
	reader
	n int
}

func (c *countingReader) Iter(lo, hi []byte, fn func(k, v []byte) error) error {
	return c.reader.Iter(lo, hi, func(k, v []byte) error {
		c.n++
		return fn(k, v)
	})
}

func collectHistory(t *testing.T, r reader, cur int64, key string, limit int, reverse bool) []int64 {
	t.Helper()
	var revs []int64
	err := history(context.Background(), r, cur, []byte(key), limit, reverse, func(v *Version) error {
		if string(v.Key) != key {
			t.Fatalf("version of %q in the history of %q", v.Key, key)
		}
		revs = append(revs, v.ModRev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

// TestHistoryReverseReadsPage: a reverse history with a limit reads about
// limit versions from the index, not the key's whole history, and every
// direction and limit answers exactly the model's versions, also for a
// sparse key among other keys' writes and for versions too large for
// one page.
func TestHistoryReverseReadsPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var hot, sparse, big []int64
	for i := range 11 { // 1 MiB each: several pages' worth of bytes
		r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("big"), Value: bytes.Repeat([]byte{byte('a' + i)}, 1<<20)})
		if err != nil {
			t.Fatal(err)
		}
		big = append(big, r.Rev)
	}
	for i := range 3000 {
		r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("hot"), Value: fmt.Appendf(nil, "v%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		hot = append(hot, r.Rev)
		if i%700 == 0 {
			r, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("sparse"), Value: []byte("s")})
			if err != nil {
				t.Fatal(err)
			}
			sparse = append(sparse, r.Rev)
		}
		if i == 1500 {
			d, err := e.s.Delete(ctx, actor, DeleteRequest{Key: []byte("sparse")})
			if err != nil || d.Deleted != 1 {
				t.Fatal(d, err)
			}
			sparse = append(sparse, d.Rev)
		}
	}
	sn := e.j.Stream(journal.Audit).Snapshot()
	defer sn.Close()
	cur := sn.Seq()

	cr := &countingReader{reader: snapReader{sn}}
	got := collectHistory(t, cr, cur, "hot", 10, true)
	if want := reversed(hot)[:10]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reverse limit=10: %v, want %v", got, want)
	}
	if cr.n > 14 {
		t.Errorf("reverse limit=10 read %d index entries of a 3000-version history, want about 10", cr.n)
	}
	cr.n = 0
	collectHistory(t, cr, cur, "hot", 10, false)
	if cr.n > 12 {
		t.Errorf("forward limit=10 read %d index entries", cr.n)
	}

	for _, tc := range []struct {
		key  string
		revs []int64
	}{{"hot", hot}, {"sparse", sparse}, {"big", big}} {
		for _, limit := range []int{0, 1, 7, 300, 5000} {
			want := tc.revs
			if limit > 0 && limit < len(want) {
				want = want[:limit]
			}
			if got := collectHistory(t, snapReader{sn}, cur, tc.key, limit, false); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s limit=%d: %v, want %v", tc.key, limit, got, want)
			}
			want = reversed(tc.revs)
			if limit > 0 && limit < len(want) {
				want = want[:limit]
			}
			if got := collectHistory(t, snapReader{sn}, cur, tc.key, limit, true); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s reverse limit=%d: %v, want %v", tc.key, limit, got, want)
			}
		}
	}
	if got := collectHistory(t, snapReader{sn}, cur, "none", 0, true); len(got) != 0 {
		t.Errorf("history of a key never written: %v", got)
	}
}

func reversed(s []int64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// stopRequest is a fakeRequest whose Row fails after n rows, as a client
// that went away.
type stopRequest struct {
	fakeRequest
	n int
}

func (r *stopRequest) Row(v any) error {
	if len(r.out) >= r.n {
		return errors.New("client gone")
	}
	return r.fakeRequest.Row(v)
}

var _ engines.Request = (*stopRequest)(nil)

// TestHistoryVerbStreams: kv history answers rows as it reads them (a
// failing Row ends the read at once), with time and actor per row.
func TestHistoryVerbStreams(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 600 {
		if _, err := e.s.Put(ctx, actor, PutRequest{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	stmts, err := dsl.Parse("kv history k reverse", e.table)
	if err != nil {
		t.Fatal(err)
	}
	req := &stopRequest{fakeRequest: fakeRequest{st: stmts[0]}, n: 3}
	if err := e.handler("kv history")(ctx, req); err == nil || !strings.Contains(err.Error(), "client gone") {
		t.Fatalf("history with a failing Row: %v", err)
	}
	if len(req.out) != 3 || !strings.Contains(req.out[0], `"value":"v599"`) || !strings.Contains(req.out[0], `"actor":`) || !strings.Contains(req.out[0], `"time":`) {
		t.Fatalf("rows: %v", req.out)
	}
}
