package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/cairnhq/cairn/client"
)

// runDiscovery measures issue 17's targets against the real daemon: SRV
// queries per second for a service of 50 instances from a miekg/dns load
// generator on loopback; /v1/health/service/NAME?passing requests per
// second over 64 connections; and KV PUTs through consul/api from 64
// clients against `kv put` through 64 socket clients, alternating, as a
// ratio.
func runDiscovery(ctx context.Context, b *bench) error {
	d, err := b.newDaemon(b.tmp + "/discovery-data")
	if err != nil {
		return err
	}
	d.profileAs("discovery")
	// CAIRNBENCH_DISCOVERY_PUTS=both|consul|socket runs only the PUT
	// loads (both, or one of them: a daemon profile of one load alone).
	puts := os.Getenv("CAIRNBENCH_DISCOVERY_PUTS")
	_, st, err := d.start(ctx)
	if err != nil {
		return err
	}
	cfg := api.DefaultConfig()
	cfg.Address = st.HTTP
	cfg.Transport.MaxIdleConnsPerHost = 128
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: fmt.Sprintf("api-%d", i), Name: "api",
			Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Port: 9000 + i}); err != nil {
			return err
		}
	}
	for i := 0; i < 3; i++ {
		if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: fmt.Sprintf("web-%d", i), Name: "web",
			Address: "127.0.0.1", Port: 8080 + i, Check: &api.AgentServiceCheck{TTL: "1h", Status: "passing"}}); err != nil {
			return err
		}
	}
	dur := 3 * time.Second
	if b.cfg.quick {
		dur = time.Second
	}
	rounds := b.cfg.rounds

	pid := d.Cmd.Process.Pid
	var srv, passing []float64
	var consulPut, socketPut putStats
	for r := 0; r < rounds; r++ {
		if puts == "" {
			q, err := dnsLoad(ctx, st.Listeners["dns"], "api.service.consul.", dnsSockets, dnsInflight, dur)
			if err != nil {
				return err
			}
			srv = append(srv, q)
			h, err := httpLoad(ctx, "http://"+st.HTTP+"/v1/health/service/web?passing", 64, dur)
			if err != nil {
				return err
			}
			passing = append(passing, h)
		}
		// The two PUT loads alternate which goes first, round by round.
		for k := 0; k < 2; k++ {
			if (r+k)%2 == 0 {
				if puts == "socket" {
					continue
				}
				if err := consulPut.measure(st.HTTP, pid, func() (float64, int64, error) { return consulPutLoad(ctx, st.HTTP, 64, dur, r) }); err != nil {
					return err
				}
			} else {
				if puts == "consul" {
					continue
				}
				if err := socketPut.measure(st.HTTP, pid, func() (float64, int64, error) { return socketPutLoad(ctx, d.Socket, 64, dur, r) }); err != nil {
					return err
				}
			}
		}
	}
	if puts == "" {
		mSRV, mPass := median(srv), median(passing)
		b.add(fmt.Sprintf("DNS SRV api.service.consul (50 instances), %d UDP sockets × %d in flight", dnsSockets, dnsInflight), "≥ 50k queries/s", fmt.Sprintf("%.1fk queries/s", mSRV/1e3), ptr(mSRV >= 50e3))
		b.add("HTTP /v1/health/service/web?passing (3 instances), 64 conns", "≥ 10k req/s", fmt.Sprintf("%.1fk req/s", mPass/1e3), ptr(mPass >= 10e3))
	}
	mc, ms := median(consulPut.rate), median(socketPut.rate)
	if mc > 0 && ms > 0 {
		ratio := ms / mc
		b.add("KV PUT, 64 clients: consul/api vs kv put on the socket", "within 1.2×", fmt.Sprintf("consul/api %s, socket %s: socket/consul %.2f×", rate(mc), rate(ms), ratio), ptr(ratio <= 1.2))
	}
	for _, p := range []struct {
		name string
		s    *putStats
	}{{"consul/api", &consulPut}, {"socket", &socketPut}} {
		if len(p.s.rate) > 0 {
			b.add("KV PUT, 64 clients, "+p.name+": CPU per PUT", "", fmt.Sprintf("daemon %.1f µs, load generator %.1f µs; %.1f events a commit, fsync %.2f ms (rates %s)",
				median(p.s.daemonCPU), median(p.s.genCPU), median(p.s.group), median(p.s.syncMS), rates(p.s.rate)), nil)
		}
	}
	if puts != "" {
		return nil
	}
	return checksLoad(ctx, b, c, pid)
}

// putStats are one PUT load's rounds: PUTs/s, the daemon's and the load
// generator's (this process's) CPU time per PUT in µs, and the journal's
// mean events per commit group and mean fsync time (ms) from the daemon's
// /metrics.
type putStats struct{ rate, daemonCPU, genCPU, group, syncMS []float64 }

// measure runs load once, reading both processes' CPU time and the
// journal's commit figures around it.
func (s *putStats) measure(httpAddr string, pid int, load func() (float64, int64, error)) error {
	// cpu reads both processes' CPU time; the commit figures are read
	// outside it, so that serving /metrics is not counted.
	cpu := func() (daemon, gen time.Duration, err error) {
		if daemon, err = procCPU(pid); err != nil {
			return
		}
		gen, err = procCPU(os.Getpid())
		return
	}
	c0, err := commitFigures(httpAddr)
	if err != nil {
		return err
	}
	d0, g0, err := cpu()
	if err != nil {
		return err
	}
	r, n, err := load()
	if err != nil {
		return err
	}
	d1, g1, err := cpu()
	if err != nil {
		return err
	}
	c1, err := commitFigures(httpAddr)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("a PUT load did nothing")
	}
	if groups := c1.commits - c0.commits; groups > 0 {
		s.group = append(s.group, (c1.events-c0.events)/groups)
		s.syncMS = append(s.syncMS, (c1.syncSec-c0.syncSec)/groups*1e3)
	}
	s.rate = append(s.rate, r)
	s.daemonCPU = append(s.daemonCPU, float64((d1-d0).Microseconds())/float64(n))
	s.genCPU = append(s.genCPU, float64((g1-g0).Microseconds())/float64(n))
	return nil
}

// commits are the audit stream's commit figures: groups committed, events
// in them, and the seconds their fsyncs took.
type commits struct{ commits, events, syncSec float64 }

// commitFigures reads them from the daemon's /metrics.
func commitFigures(httpAddr string) (commits, error) {
	v, err := scrapeValues("http://"+httpAddr+"/metrics",
		`cairn_journal_commit_events_count{stream="audit"}`,
		`cairn_journal_commit_events_sum{stream="audit"}`,
		`cairn_journal_sync_seconds_sum{stream="audit"}`)
	if err != nil {
		return commits{}, err
	}
	return commits{commits: v[0], events: v[1], syncSec: v[2]}, nil
}

// rates lists each round's rate, in thousands a second.
func rates(xs []float64) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.1fk", x/1e3)
	}
	return b.String()
}

// checksLoad registers 1,000 services with an HTTP check every second
// against a server in this process, lets them settle, then for a window
// measures the daemon's CPU share and, per check, the largest gap between
// two probes the server saw: a check is late when a gap passes two
// intervals (late by more than one interval).
func checksLoad(ctx context.Context, b *bench, c *api.Client, pid int) error {
	const n = 1000
	var mu sync.Mutex
	seen := make([][]time.Time, n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/c/%d", &i); err == nil && i >= 0 && i < n {
			mu.Lock()
			seen[i] = append(seen[i], time.Now())
			mu.Unlock()
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for i := 0; i < n; i++ {
		if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: fmt.Sprintf("chk-%d", i), Name: "chk",
			Check: &api.AgentServiceCheck{HTTP: fmt.Sprintf("http://%s/c/%d", ln.Addr(), i), Interval: "1s", Timeout: "1s"}}); err != nil {
			return err
		}
	}
	settle, window := 5*time.Second, 20*time.Second
	if b.cfg.quick {
		window = 5 * time.Second
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	t1 := time.Now()
	share := (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	mu.Lock()
	var worst time.Duration
	late := 0
	for i := range seen {
		prev := t0
		var gap time.Duration
		for _, at := range seen[i] {
			if at.Before(t0) {
				continue
			}
			if at.After(t1) {
				break
			}
			gap = max(gap, at.Sub(prev))
			prev = at
		}
		gap = max(gap, t1.Sub(prev))
		worst = max(worst, gap)
		if gap > 2*time.Second {
			late++
		}
	}
	mu.Unlock()
	b.add("1,000 HTTP checks every 1s: daemon CPU", "", fmt.Sprintf("%.0f%% of one CPU", share*100), nil)
	b.add("1,000 HTTP checks every 1s: late by > 1 interval", "none late", fmt.Sprintf("%d late, largest gap between probes %.2f s", late, worst.Seconds()), ptr(late == 0))
	return nil
}

// procCPU is the user and system time pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 a second).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %v, stime %v", pid, err1, err2)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// dnsLoad sends SRV queries for name as dnsperf does: from sockets UDP
// sockets, each keeping up to inflight queries outstanding (a writer
// sends while a slot is free, a reader takes the answers), for dur; it
// answers queries/s. Waiting for each answer before the next would
// measure the generator's own wake-ups as much as the server. EDNS0 with
// a 4096-byte buffer lets the 50-record answer fit one datagram, as a
// resolver asks. Like dnsperf, it checks each answer's header (an id it
// has outstanding, no truncation, 50 answers) rather than unpacking every
// record, so the generator's CPU goes to sending. An answer missing for
// 5 s fails the run: on loopback none is lost.
func dnsLoad(ctx context.Context, addr, name string, sockets, inflight int, dur time.Duration) (float64, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeSRV)
	m.SetEdns0(4096, false)
	query, err := m.Pack()
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err }) }
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < sockets; i++ {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		slots := make(chan struct{}, inflight)
		var asked [1 << 16]atomic.Bool
		sent := make(chan struct{}) // closed when the writer stops
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			defer close(sent)
			q := append([]byte(nil), query...)
			for id := uint16(i * 4096); time.Now().Before(deadline) && ctx.Err() == nil; id++ {
				slots <- struct{}{}
				binary.BigEndian.PutUint16(q, id)
				asked[id].Store(true)
				if _, err := conn.Write(q); err != nil {
					fail(err)
					return
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			defer conn.Close() // a writer waiting on a slot then fails its write
			defer func() {
				for len(slots) > 0 {
					<-slots
				}
			}()
			buf := make([]byte, 65536)
			last := time.Now()
			for {
				select {
				case <-sent:
					if len(slots) == 0 {
						return // every query answered
					}
				default:
				}
				conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				k, err := conn.Read(buf)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if len(slots) > 0 && time.Since(last) > 5*time.Second {
						fail(fmt.Errorf("SRV %s: no answer for 5 s with %d outstanding", name, len(slots)))
						return
					}
					continue
				}
				if err != nil {
					fail(err)
					return
				}
				last = time.Now()
				if k < 12 || !asked[binary.BigEndian.Uint16(buf)].Swap(false) {
					fail(fmt.Errorf("SRV %s: a short answer or one to no outstanding query", name))
					return
				}
				bits, ancount := binary.BigEndian.Uint16(buf[2:]), binary.BigEndian.Uint16(buf[6:])
				if bits&(1<<9) != 0 || ancount != 50 {
					fail(fmt.Errorf("SRV %s: %d answers, flags %#x (truncated?)", name, ancount, bits))
					return
				}
				if last.Before(deadline) {
					n.Add(1)
				}
				<-slots
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / dur.Seconds(), firstErr
}

// The DNS load's shape: dnsperf's default keeps 100 queries outstanding.
const dnsSockets, dnsInflight = 4, 25

// httpLoad GETs url from conns keep-alive connections for dur; it answers
// requests/s.
func httpLoad(ctx context.Context, url string, conns int, dur time.Duration) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				resp, err := hc.Get(url)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					once.Do(func() { firstErr = fmt.Errorf("GET %s: %s", url, resp.Status) })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / dur.Seconds(), firstErr
}

// consulPutLoad PUTs keys through consul/api from clients goroutines (one
// connection each) for dur; it answers PUTs/s and their number.
func consulPutLoad(ctx context.Context, addr string, clients int, dur time.Duration, round int) (float64, int64, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.Transport.MaxIdleConnsPerHost = clients
	c, err := api.NewClient(cfg)
	if err != nil {
		return 0, 0, err
	}
	defer cfg.Transport.CloseIdleConnections()
	return loop(ctx, clients, dur, func(i, j int) error {
		_, err := c.KV().Put(&api.KVPair{Key: fmt.Sprintf("bench/r%d/c%d/%d", round, i, j), Value: []byte("value-of-some-config")}, nil)
		return err
	})
}

// socketPutLoad runs `kv put` from clients socket connections for dur; it
// answers PUTs/s and their number.
func socketPutLoad(ctx context.Context, socket string, clients int, dur time.Duration, round int) (float64, int64, error) {
	cs := make([]*client.Client, clients)
	for i := range cs {
		c, err := client.Dial(ctx, socket)
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		cs[i] = c
	}
	return loop(ctx, clients, dur, func(i, j int) error {
		_, err := cs[i].Do(ctx, fmt.Sprintf("kv put bench/r%d/c%d/%d value-of-some-config", round, i, j))
		return err
	})
}

// loop runs fn(worker, n) from workers goroutines for dur and answers
// calls/s and the number of calls.
func loop(ctx context.Context, workers int, dur time.Duration, fn func(i, j int) error) (float64, int64, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; time.Now().Before(deadline) && ctx.Err() == nil; j++ {
				if err := fn(i, j); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), n.Load(), firstErr
}
