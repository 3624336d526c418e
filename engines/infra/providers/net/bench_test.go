package netprovider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// The lead's target: plan and apply of 1,000 resources (500 links, 500
// addresses) in a test namespace under 5 s, a no-op refresh of them well
// under 1 s. Run with: go test -run '^$' -bench . -benchtime 3x

// benchConfig returns the configurations of 500 links and an address on
// each: dummies where the kernel has them, else bridges.
func benchConfig(b *testing.B, ns string) (linkCfgs, addrCfgs []provider.Values) {
	kind := "dummy"
	s := open(b)
	_, err := links.Create(context.Background(), s, config(b, links, provider.Values{"name": "probe", "kind": "dummy", "namespace": ns}))
	if asUnsupported(err) != nil {
		kind = "bridge"
	} else if err == nil {
		links.Delete(context.Background(), s, linkID(ns, "probe"), nil)
	}
	b.Logf("links of kind %s", kind)
	for i := range 500 {
		name := fmt.Sprintf("l%d", i)
		linkCfgs = append(linkCfgs, config(b, links, provider.Values{"name": name, "kind": kind, "namespace": ns, "mtu": int64(1400)}))
		addrCfgs = append(addrCfgs, config(b, addresses, provider.Values{"link": name, "cidr": fmt.Sprintf("10.%d.%d.1/24", i/256, i%256), "namespace": ns}))
	}
	return linkCfgs, addrCfgs
}

// tenAtOnce runs f for 0..n-1, ten at a time as the engine does by default.
func tenAtOnce(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	sem := make(chan struct{}, 10)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// refresh reads every configured object in a new session and returns how
// many it found and the dumps it took.
func refresh(linkCfgs, addrCfgs []provider.Values) (found int, dumps int64, err error) {
	s := newSession()
	defer s.Close()
	var mu sync.Mutex
	read := func(r provider.Resource, v provider.Values) error {
		id, err := r.ID(v)
		if err != nil {
			return err
		}
		_, ok, err := r.Read(context.Background(), s, id)
		if ok {
			mu.Lock()
			found++
			mu.Unlock()
		}
		return err
	}
	all := len(linkCfgs) + len(addrCfgs)
	err = tenAtOnce(all, func(i int) error {
		if i < len(linkCfgs) {
			return read(links, linkCfgs[i])
		}
		return read(addresses, addrCfgs[i-len(linkCfgs)])
	})
	return found, s.dumps.Load(), err
}

// apply creates the links, then the addresses on them, in one session.
func apply(linkCfgs, addrCfgs []provider.Values) error {
	s := newSession()
	defer s.Close()
	err := tenAtOnce(len(linkCfgs), func(i int) error {
		_, err := links.Create(context.Background(), s, linkCfgs[i])
		return err
	})
	if err != nil {
		return err
	}
	return tenAtOnce(len(addrCfgs), func(i int) error {
		_, err := addresses.Create(context.Background(), s, addrCfgs[i])
		return err
	})
}

// teardown deletes the links of linkCfgs in one batch and returns when the
// kernel is done. Deleting a bridge costs this kernel some 16 ms under the
// lock every link change takes, even in a batch: left to ip netns del, the
// teardown would run in the background and stall the next iteration.
func teardown(b *testing.B, ns string, linkCfgs []provider.Values) {
	b.Helper()
	batch := filepath.Join(b.TempDir(), "teardown")
	var sb strings.Builder
	for _, v := range linkCfgs {
		fmt.Fprintf(&sb, "link set dev %s group 7\n", v.String("name"))
	}
	sb.WriteString("link del group 7\n")
	if err := os.WriteFile(batch, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	ip(b, "-n", ns, "-b", batch)
}

// BenchmarkPlanApply1000 plans 1,000 resources (a refresh that finds
// none) and applies them, in a fresh namespace each time.
func BenchmarkPlanApply1000(b *testing.B) {
	needKernel(b)
	var plan, app time.Duration
	for range b.N {
		b.StopTimer()
		ns := testNS(b)
		linkCfgs, addrCfgs := benchConfig(b, ns)
		b.StartTimer()
		t0 := time.Now()
		if found, _, err := refresh(linkCfgs, addrCfgs); err != nil || found != 0 {
			b.Fatalf("plan: found %d, %v", found, err)
		}
		t1 := time.Now()
		if err := apply(linkCfgs, addrCfgs); err != nil {
			b.Fatal(err)
		}
		app += time.Since(t1)
		plan += t1.Sub(t0)
		b.StopTimer()
		teardown(b, ns, linkCfgs)
		b.StartTimer()
	}
	b.ReportMetric(float64(plan.Milliseconds())/float64(b.N), "plan-ms/op")
	b.ReportMetric(float64(app.Milliseconds())/float64(b.N), "apply-ms/op")
}

// BenchmarkRefresh1000 reads 1,000 resources that match their
// configuration: a no-op refresh.
func BenchmarkRefresh1000(b *testing.B) {
	needKernel(b)
	ns := testNS(b)
	linkCfgs, addrCfgs := benchConfig(b, ns)
	if err := apply(linkCfgs, addrCfgs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var dumps int64
	for range b.N {
		found, d, err := refresh(linkCfgs, addrCfgs)
		if err != nil || found != 1000 {
			b.Fatalf("refresh: found %d, %v", found, err)
		}
		dumps += d
	}
	b.ReportMetric(float64(dumps)/float64(b.N), "dumps/op")
	b.StopTimer()
	teardown(b, ns, linkCfgs)
}
