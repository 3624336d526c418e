package netprovider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// fill makes n bridges b0..b(n-1), each with per addresses 10.i.j.1/24, in
// one ip batch, and returns their IDs.
func fill(t testing.TB, ns string, n, per int) map[string]provider.Resource {
	t.Helper()
	batch := filepath.Join(t.TempDir(), "batch")
	f, err := os.Create(batch)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]provider.Resource{}
	for i := range n {
		name := fmt.Sprintf("b%d", i)
		fmt.Fprintf(f, "link add %s type bridge\n", name)
		ids[linkID(ns, name)] = links
		for j := range per {
			cidr := fmt.Sprintf("10.%d.%d.1/24", i, j)
			fmt.Fprintf(f, "addr add %s dev %s\n", cidr, name)
			ids[addressID(ns, name, cidr)] = addresses
		}
	}
	f.Close()
	ip(t, "-n", ns, "-b", batch)
	return ids
}

// readAll reads ids concurrently, ten at a time as the engine does, and
// returns how many were found.
func readAll(t testing.TB, s provider.Session, ids map[string]provider.Resource) int {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	found := 0
	sem := make(chan struct{}, 10)
	for id, r := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, ok, err := r.Read(context.Background(), s, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("read %s: %v", id, err)
			}
			if ok {
				found++
			}
		}()
	}
	wg.Wait()
	return found
}

// A thousand reads in one namespace cost one dump of links and one of
// addresses; a write makes the next read dump again, and writes never dump.
func TestSessionDumpsOncePerNamespace(t *testing.T) {
	ns := testNS(t)
	// Few links, many addresses: a namespace of 500 bridges takes the
	// kernel seconds to tear down, holding the lock every later test needs.
	ids := fill(t, ns, 50, 19)
	s := open(t)
	if n := readAll(t, s, ids); n != 1000 {
		t.Errorf("found %d of 1000", n)
	}
	if d := s.dumps.Load(); d != 2 {
		t.Errorf("1000 reads took %d dumps, want 2 (links, addresses)", d)
	}
	readAll(t, s, ids)
	if d := s.dumps.Load(); d != 2 {
		t.Errorf("reading again took %d dumps in all, want still 2", d)
	}

	// Writes use targeted calls only.
	id, v := create(t, s, links, provider.Values{"name": "new0", "kind": "bridge", "namespace": ns, "mtu": int64(1400)})
	cfg := config(t, links, provider.Values{"name": "new0", "kind": "bridge", "namespace": ns, "mtu": int64(1300)})
	if _, err := links.Update(context.Background(), s, id, v, cfg); err != nil {
		t.Fatal(err)
	}
	create(t, s, addresses, provider.Values{"link": "new0", "cidr": "10.200.0.1/24", "namespace": ns})
	if d := s.dumps.Load(); d != 2 {
		t.Errorf("create and update took %d dumps in all, want still 2", d)
	}

	// The write made the dumps stale: the next read sees it, with one
	// dump more per kind.
	got, found, err := links.Read(context.Background(), s, id)
	if err != nil || !found || got["mtu"] != int64(1300) {
		t.Errorf("read after write: %v %t %v", got, found, err)
	}
	if _, found, _ := addresses.Read(context.Background(), s, addressID(ns, "new0", "10.200.0.1/24")); !found {
		t.Error("the new address: not found")
	}
	if d := s.dumps.Load(); d != 4 {
		t.Errorf("reads after a write took %d dumps in all, want 4", d)
	}
	// A route's write leaves the links' and addresses' dumps fresh.
	create(t, s, routes, provider.Values{"destination": "10.201.0.0/16", "link": "new0", "namespace": ns})
	readAll(t, s, ids)
	if d := s.dumps.Load(); d != 4 {
		t.Errorf("reads after a route's write took %d dumps in all, want still 4", d)
	}
	// A namespace of its own has dumps of its own.
	other := testNS(t)
	if _, found, _ := links.Read(context.Background(), s, linkID(other, "b0")); found {
		t.Error("b0 found in the other namespace")
	}
	if d := s.dumps.Load(); d != 5 {
		t.Errorf("a read in another namespace: %d dumps in all, want 5", d)
	}
}

// Creates, reads and deletes running concurrently in one session see each
// other's effects.
func TestSessionConcurrentWrites(t *testing.T) {
	ns := testNS(t)
	s := open(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d", i)
			cfg := config(t, links, provider.Values{"name": name, "kind": "bridge", "namespace": ns})
			v, err := links.Create(context.Background(), s, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			got, found, err := links.Read(context.Background(), s, linkID(ns, name))
			if err != nil || !found {
				t.Errorf("read %s right after its create: %t %v", name, found, err)
				return
			}
			if got["index"] != v["index"] {
				t.Errorf("%s: read %v, created %v", name, got, v)
			}
			if i%2 == 0 {
				if err := links.Delete(context.Background(), s, linkID(ns, name), v); err != nil {
					t.Error(err)
				}
				if _, found, _ := links.Read(context.Background(), s, linkID(ns, name)); found {
					t.Errorf("read %s right after its delete: found", name)
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, l := range ipJSON(t, ns, "link", "show") {
		if l["ifname"] != "lo" {
			n++
		}
	}
	if n != 20 {
		t.Errorf("ip shows %d links, want 20", n)
	}
}
