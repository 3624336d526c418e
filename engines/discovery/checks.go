package discovery

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// checker runs a prober for every check the mirror holds: it starts one
// when a check appears or is redefined and stops it when it goes. Probes
// report every result; only a change of state is journaled.
type checker struct {
	m *Module

	mu      sync.Mutex
	runners map[string]*runner
	outputs map[string]string // the last output of each check, in memory
}

type runner struct {
	defIndex int64
	cancel   context.CancelFunc
	ttlReset chan struct{}
	done     chan struct{}
}

func newChecker(m *Module) *checker {
	return &checker{m: m, runners: map[string]*runner{}, outputs: map[string]string{}}
}

func (k *checker) setOutput(id, out string) {
	k.mu.Lock()
	k.outputs[id] = out
	k.mu.Unlock()
}

// output is the check's last output, or what its record holds.
func (k *checker) output(c *check) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if o, ok := k.outputs[c.ID]; ok {
		return o
	}
	return c.Output
}

// resetTTL restarts a TTL check's timer (a pass, warn, fail or update).
func (k *checker) resetTTL(id string) {
	k.mu.Lock()
	r := k.runners[id]
	k.mu.Unlock()
	if r != nil && r.ttlReset != nil {
		select {
		case r.ttlReset <- struct{}{}:
		default:
		}
	}
}

// run reconciles the probers with the mirror at every change until ctx
// ends, then stops them all.
func (k *checker) run(ctx context.Context) {
	defer k.stopAll()
	for {
		var defs []*check
		ch := k.m.mir.read(func() {
			for _, c := range k.m.mir.checks {
				cc := *c
				defs = append(defs, &cc)
			}
		})
		k.reconcile(ctx, defs)
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func (k *checker) reconcile(ctx context.Context, defs []*check) {
	want := map[string]*check{}
	for _, c := range defs {
		want[c.ID] = c
	}
	// Runners are stopped outside the lock: a runner reporting a result
	// takes it (setOutput).
	var stop []*runner
	k.mu.Lock()
	for id, r := range k.runners {
		if c, ok := want[id]; !ok || c.DefIndex != r.defIndex {
			stop = append(stop, r)
			delete(k.runners, id)
			if !ok {
				delete(k.outputs, id)
			}
		}
	}
	k.mu.Unlock()
	for _, r := range stop {
		r.cancel()
		<-r.done
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, c := range want {
		if _, ok := k.runners[id]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &runner{defIndex: c.DefIndex, cancel: cancel, done: make(chan struct{})}
		if c.Type == checkTTL {
			r.ttlReset = make(chan struct{}, 1)
		}
		k.runners[id] = r
		go func() {
			defer close(r.done)
			k.probeLoop(rctx, c, r)
		}()
	}
}

func (k *checker) stopAll() {
	k.mu.Lock()
	rs := k.runners
	k.runners = map[string]*runner{}
	k.mu.Unlock()
	for _, r := range rs {
		r.cancel()
		<-r.done
	}
}

// probeLoop probes c every interval (a TTL check: waits for its TTL to
// pass without an update), reports each result, and deregisters c's
// service once c has been critical longer than its
// DeregisterCriticalServiceAfter.
func (k *checker) probeLoop(ctx context.Context, c *check, r *runner) {
	var criticalSince time.Time
	if c.Status == stateCritical {
		criticalSince = time.Now()
	}
	report := func(status, output string) {
		if _, err := k.m.setCheckState(ctx, journal.SystemActor(), c.ID, status, output); err != nil && ctx.Err() == nil {
			k.m.log.Warn("discovery: record a check's state", "check", c.ID, "err", err)
		}
		if status != stateCritical {
			criticalSince = time.Time{}
		} else if criticalSince.IsZero() {
			criticalSince = time.Now()
		}
		if c.DeregisterAfter > 0 && c.ServiceID != "" && !criticalSince.IsZero() && time.Since(criticalSince) > time.Duration(c.DeregisterAfter) {
			reason := fmt.Sprintf("check %s critical for more than %s", c.ID, time.Duration(c.DeregisterAfter))
			if err := k.m.deregisterService(ctx, journal.SystemActor(), c.ServiceID, reason); err != nil && ctx.Err() == nil {
				k.m.log.Warn("discovery: deregister a critical service", "service", c.ServiceID, "err", err)
			}
		}
	}
	if c.Type == checkTTL {
		ttl := time.Duration(c.TTL)
		t := time.NewTimer(ttl)
		defer t.Stop()
		// DeregisterCriticalServiceAfter of a TTL check is looked at on
		// this tick while it is critical.
		tick := time.NewTicker(max(time.Second, ttl/2))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.ttlReset:
				if !t.Stop() {
					select {
					case <-t.C:
					default:
					}
				}
				t.Reset(ttl)
				criticalSince = time.Time{}
			case <-t.C:
				report(stateCritical, "TTL expired")
			case <-tick.C:
				if !criticalSince.IsZero() {
					report(stateCritical, "TTL expired")
				}
			}
		}
	}
	tick := time.NewTicker(time.Duration(c.Interval))
	defer tick.Stop()
	for {
		status, output := probe(ctx, c)
		if ctx.Err() != nil {
			return
		}
		report(status, output)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe runs one HTTP, TCP or script check.
func probe(ctx context.Context, c *check) (status, output string) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.Timeout))
	defer cancel()
	switch c.Type {
	case checkHTTP:
		return probeHTTP(ctx, c)
	case checkTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.TCP)
		if err != nil {
			return stateCritical, fmt.Sprintf("dial tcp %s: %v", c.TCP, err)
		}
		conn.Close()
		return statePassing, fmt.Sprintf("TCP connect %s: Success", c.TCP)
	case checkScript:
		return probeScript(ctx, c)
	}
	return stateCritical, "unknown check type " + c.Type
}

// probeHTTP is Consul's HTTP check: 2xx passes, 429 warns, anything else
// is critical.
func probeHTTP(ctx context.Context, c *check) (string, string) {
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.HTTP, body)
	if err != nil {
		return stateCritical, err.Error()
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Consul Health Check")
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: c.TLSSkipVerify}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return stateCritical, fmt.Sprintf("Get %q: %v", c.HTTP, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	out := fmt.Sprintf("HTTP %s %s: %s Output: %s", method, c.HTTP, resp.Status, b)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return statePassing, out
	case resp.StatusCode == http.StatusTooManyRequests:
		return stateWarning, out
	}
	return stateCritical, out
}

// probeScript runs the check's command as the user that registered it:
// exit 0 passes, 1 warns, anything else is critical.
func probeScript(ctx context.Context, c *check) (string, string) {
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = "/"
	if c.RunAsUID != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.RunAsUID), Gid: uint32(c.RunAsGID)}}
	}
	err := cmd.Run()
	text := truncate(out.String(), 4096)
	if ctx.Err() != nil {
		return stateCritical, fmt.Sprintf("Timed out (%s) running check", time.Duration(c.Timeout))
	}
	if err == nil {
		return statePassing, text
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return stateWarning, text
	}
	return stateCritical, strings.TrimSpace(text + "\n" + err.Error())
}
