package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdctlBin returns the path of the real etcdctl. CI installs it (see
// .ci/run), so there a missing etcdctl fails the test; elsewhere it skips.
func etcdctlBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("etcdctl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcdctl not found (CI installs Debian's etcd-client): %v", err)
		}
		t.Skipf("etcdctl not found; install Debian's etcd-client to run this test: %v", err)
	}
	return p
}

// etcdServerBin is Debian's etcd, the real server the compatibility
// tests restore into or run beside cairn.
func etcdServerBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcd not found (CI installs Debian's etcd-server): %v", err)
		}
		t.Skipf("etcd not found; install Debian's etcd-server: %v", err)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startEtcdDaemon starts a daemon serving the etcd v3 API and returns it
// with the API's address.
func startEtcdDaemon(t *testing.T) (*daemonProc, string) {
	t.Helper()
	addr := freeAddr(t)
	d := startDaemon(t, withFlags("--etcd", addr))
	return d, addr
}

// etcdClient connects go.etcd.io/etcd/client/v3 to addr.
func etcdClient(t *testing.T, addr string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{addr},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// etcdctl runs the real etcdctl against addr with stdin (may be empty).
func etcdctl(t *testing.T, bin, addr, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints=" + addr, "--dial-timeout=10s"}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func etcdctlOK(t *testing.T, bin, addr, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := etcdctl(t, bin, addr, stdin, args...)
	if err != nil {
		t.Fatalf("etcdctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// headerRev reads header.revision from etcdctl's -w json output.
func headerRev(t *testing.T, out string) int64 {
	t.Helper()
	var v struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Header.Revision == 0 {
		t.Fatalf("etcdctl -w json output %q: no header revision (%v)", out, err)
	}
	return v.Header.Revision
}

// kvRow is a KV row of the DSL.
type kvRow struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	CreateRev int64  `json:"create_rev"`
	ModRev    int64  `json:"mod_rev"`
	Version   int64  `json:"version"`
	Lease     string `json:"lease"`
}

func kvRows(t *testing.T, raw []json.RawMessage) []kvRow {
	t.Helper()
	rows := make([]kvRow, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &rows[i]); err != nil {
			t.Fatalf("kv row %s: %v", r, err)
		}
	}
	return rows
}

// etcdctlWatchResponse is a line of `etcdctl watch -w json`.
type etcdctlWatchResponse struct {
	Header struct {
		Revision int64 `json:"revision"`
	}
	Events []struct {
		Type int `json:"type"`
		KV   struct {
			Key   []byte `json:"key"`
			Value []byte `json:"value"`
			Mod   int64  `json:"mod_revision"`
		} `json:"kv"`
		PrevKV *struct {
			Key   []byte `json:"key"`
			Value []byte `json:"value"`
		} `json:"prev_kv"`
	}
}

// TestEtcdctl drives `--etcd` with the real etcdctl through put, get
// --prefix, get --rev, del, txn, watch --rev=1 --prev-kv, leases and endpoint
// status, and checks that the DSL sees the same keys, values and events.
func TestEtcdctl(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	d, addr := startEtcdDaemon(t)
	c := dial(t, d)
	run := func(stdin string, args ...string) string { t.Helper(); return etcdctlOK(t, bin, addr, stdin, args...) }

	if out := run("", "put", "app/first", "1"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("etcdctl put: %q, want OK", out)
	}
	rev0 := headerRev(t, run("", "put", "app/db", "postgres://a", "-w", "json"))
	rev1 := headerRev(t, run("", "put", "app/db", "postgres://b", "-w", "json"))
	run("", "del", "app/first")
	run("", "put", "app/cache", "redis")
	run("", "put", "other", "x")

	if out, want := run("", "get", "app/", "--prefix"), "app/cache\nredis\napp/db\npostgres://b\n"; out != want {
		t.Errorf("etcdctl get app/ --prefix:\n%q\nwant\n%q", out, want)
	}
	if out, want := run("", "get", "app/db", fmt.Sprintf("--rev=%d", rev0)), "app/db\npostgres://a\n"; out != want {
		t.Errorf("etcdctl get --rev=%d: %q, want %q", rev0, out, want)
	}
	if out, want := run("", "get", "app/", "--prefix", "--sort-by=MODIFY", "--order=ASCEND", "--keys-only"), "app/db\n\napp/cache\n\n"; out != want {
		t.Errorf("etcdctl get --sort-by=MODIFY --order=ASCEND: %q, want %q", out, want)
	}
	if out := run("", "del", "other"); strings.TrimSpace(out) != "1" {
		t.Errorf("etcdctl del other: %q, want 1", out)
	}

	// The txn as etcdctl reads it from stdin: compares, a blank line,
	// success requests, a blank line, failure requests.
	txn := "value(\"app/db\") = \"postgres://b\"\n\nput app/db postgres://c\nput app/flag on\n\nget app/db\n\n"
	if out := run(txn, "txn"); !strings.HasPrefix(out, "SUCCESS") {
		t.Fatalf("etcdctl txn: %q, want SUCCESS first", out)
	}
	if out := run(txn, "txn"); !strings.HasPrefix(out, "FAILURE") || !strings.Contains(out, "app/db\npostgres://c") {
		t.Fatalf("etcdctl txn (compare now false): %q, want FAILURE first", out)
	}

	// Leases.
	out := run("", "lease", "grant", "60")
	m := regexp.MustCompile(`lease ([0-9a-f]+) granted with TTL\(60s\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("etcdctl lease grant 60: %q", out)
	}
	lease := m[1]
	run("", "put", "app/session", "s1", "--lease="+lease)
	if out := run("", "lease", "timetolive", lease, "--keys"); !strings.Contains(out, "granted with TTL(60s)") || !strings.Contains(out, "attached keys([app/session])") {
		t.Errorf("etcdctl lease timetolive --keys: %q", out)
	}
	if out := run("", "lease", "keep-alive", "--once", lease); !strings.Contains(out, "keepalived with TTL(60)") {
		t.Errorf("etcdctl lease keep-alive --once: %q", out)
	}
	if out := run("", "lease", "list"); !strings.Contains(out, lease) {
		t.Errorf("etcdctl lease list: %q, want %s in it", out, lease)
	}
	if out := run("", "lease", "revoke", lease); !strings.Contains(out, "revoked") {
		t.Errorf("etcdctl lease revoke: %q", out)
	}
	if out := run("", "get", "app/session"); out != "" {
		t.Errorf("app/session after its lease was revoked: %q, want nothing", out)
	}
	if out := run("", "lease", "timetolive", lease); !strings.Contains(out, "already expired") {
		t.Errorf("etcdctl lease timetolive of a revoked lease: %q, want \"already expired\"", out)
	}

	// endpoint status.
	out = run("", "endpoint", "status", "-w", "json")
	var st []struct {
		Endpoint string `json:"Endpoint"`
		Status   struct {
			Header struct {
				Revision int64 `json:"revision"`
			} `json:"header"`
			Version  string `json:"version"`
			Leader   uint64 `json:"leader"`
			RaftTerm uint64 `json:"raftTerm"`
		} `json:"Status"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("etcdctl endpoint status -w json: %q (%v)", out, err)
	}
	if s := st[0].Status; s.Version == "" || s.Leader == 0 || s.RaftTerm == 0 || s.Header.Revision < rev1 {
		t.Errorf("endpoint status: %+v", s)
	}
	if out := run("", "endpoint", "status"); !strings.Contains(out, addr) {
		t.Errorf("etcdctl endpoint status: %q", out)
	}
	if out := run("", "member", "list"); !strings.Contains(out, addr) {
		t.Errorf("etcdctl member list: %q", out)
	}
	// Compaction is journaled and drops nothing (etcd_watch_test.go).
	if out, errOut, err := etcdctl(t, bin, addr, "", "compact", "1"); err != nil || !strings.Contains(out, "compacted revision 1") {
		t.Errorf("etcdctl compact: err %v, stdout %q, stderr %q; want compacted revision 1", err, out, errOut)
	}

	// watch --rev=1 --prev-kv replays everything, one response per
	// revision (the txn's two puts together), with previous values.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := exec.CommandContext(ctx, bin, "--endpoints="+addr, "watch", "--rev=1", "--prev-kv", "--prefix", "app/", "-w", "json")
	w.Env = append(os.Environ(), "ETCDCTL_API=3")
	wout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var werr bytes.Buffer
	w.Stderr = &werr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var resps []etcdctlWatchResponse
	sc := bufio.NewScanner(wout)
	sc.Buffer(nil, 8<<20)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// app/first put and delete, app/db ×2, app/cache, txn (app/db,
	// app/flag), app/session put, revoke (app/session delete): eight
	// revisions under app/.
	deadline := time.After(20 * time.Second)
	for len(resps) < 8 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("etcdctl watch ended early: %s", werr.String())
			}
			var r etcdctlWatchResponse
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("etcdctl watch line %q: %v", line, err)
			}
			if len(r.Events) > 0 {
				resps = append(resps, r)
			}
		case <-deadline:
			t.Fatalf("etcdctl watch --rev=1: %d responses after 20s, want 8; stderr %s", len(resps), werr.String())
		}
	}
	cancel()
	w.Wait()
	for range lines {
	}
	if got := len(resps[5].Events); got != 2 {
		t.Errorf("the txn arrived as a response with %d events, want 2", got)
	}
	if e := resps[2].Events[0]; e.PrevKV == nil || string(e.PrevKV.Value) != "postgres://a" || string(e.KV.Value) != "postgres://b" {
		t.Errorf("second put of app/db: %+v, want prev_kv postgres://a", e)
	}
	if e := resps[7].Events[0]; e.Type != 1 || string(e.KV.Key) != "app/session" || e.PrevKV == nil || string(e.PrevKV.Value) != "s1" {
		t.Errorf("lease revoke: %+v, want a DELETE of app/session with prev_kv s1", e)
	}
	for i := 1; i < len(resps); i++ {
		if resps[i].Header.Revision <= resps[i-1].Header.Revision {
			t.Errorf("watch responses out of order: %d then %d", resps[i-1].Header.Revision, resps[i].Header.Revision)
		}
	}

	// The DSL sees the same keys and values…
	rows := kvRows(t, do(t, c, "kv get app/ prefix").Rows)
	got := map[string]string{}
	for _, r := range rows {
		got[r.Key] = r.Value
	}
	if want := map[string]string{"app/cache": "redis", "app/db": "postgres://c", "app/flag": "on"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kv get app/ prefix: %v, want %v", got, want)
	}
	// …and the events, with the etcd API as the actor.
	evs := do(t, c, "events kind=kv.*").Events
	if len(evs) < 7 {
		t.Fatalf("events kind=kv.*: %d events, want at least 7", len(evs))
	}
	for _, raw := range evs {
		var ev struct {
			Kind  string `json:"kind"`
			Actor struct {
				Via  string `json:"via"`
				Addr string `json:"addr"`
				UID  int    `json:"uid"`
			} `json:"actor"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Actor.Via != "etcd" || !strings.HasPrefix(ev.Actor.Addr, "127.0.0.1:") || ev.Actor.UID != os.Getuid() {
			// The kernel names the loopback caller's uid (NETLINK_INET_DIAG).
			t.Errorf("event %s: actor %+v, want via etcd, addr 127.0.0.1:…, uid %d (the caller's)", ev.Kind, ev.Actor, os.Getuid())
		}
	}
}

// TestEtcdClient drives `--etcd` with go.etcd.io/etcd/client/v3: a txn as
// one WatchResponse, a lease expiry as DELETE events, progress
// notifications, cancel, and read-after-write.
func TestEtcdClient(t *testing.T) {
	t.Parallel()
	d, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Read after an acknowledged write, through gRPC and the socket.
	for i := range 20 {
		v := strconv.Itoa(i)
		if _, err := cli.Put(ctx, "raw", v); err != nil {
			t.Fatal(err)
		}
		gr, err := cli.Get(ctx, "raw", clientv3.WithSerializable())
		if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != v {
			t.Fatalf("get after put %s: %v %v", v, gr, err)
		}
	}
	if rows := kvRows(t, do(t, dial(t, d), "kv get raw").Rows); len(rows) != 1 || rows[0].Value != "19" {
		t.Fatalf("DSL kv get raw: %+v, want 19", rows)
	}

	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	wch := cli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if r := <-wch; !r.Created {
		t.Fatalf("first watch response %+v, want created", r)
	}
	next := func() clientv3.WatchResponse {
		t.Helper()
		select {
		case r, ok := <-wch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			return r
		case <-time.After(15 * time.Second):
			t.Fatal("no watch response within 15s")
		}
		panic("unreachable")
	}

	tr, err := cli.Txn(ctx).Then(clientv3.OpPut("w/a", "1"), clientv3.OpPut("w/b", "2"), clientv3.OpPut("w/c", "3")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	r := next()
	if len(r.Events) != 3 || r.Header.Revision != tr.Header.Revision {
		t.Fatalf("txn of 3 puts: response with %d events at %d, want 3 at %d", len(r.Events), r.Header.Revision, tr.Header.Revision)
	}
	for _, e := range r.Events {
		if e.Kv.ModRevision != tr.Header.Revision {
			t.Errorf("txn event %s mod_revision %d, want %d", e.Kv.Key, e.Kv.ModRevision, tr.Header.Revision)
		}
	}

	// A lease's expiry arrives as DELETE events, in one response.
	lg, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"w/l1", "w/l2"} {
		if _, err := cli.Put(ctx, k, "x", clientv3.WithLease(lg.ID)); err != nil {
			t.Fatal(err)
		}
		next()
	}
	start := time.Now()
	r = next()
	if len(r.Events) != 2 || r.Events[0].Type != clientv3.EventTypeDelete || r.Events[1].Type != clientv3.EventTypeDelete {
		t.Fatalf("lease expiry: %+v, want 2 DELETE events in one response", r.Events)
	}
	if r.Events[0].PrevKv == nil || string(r.Events[0].PrevKv.Value) != "x" {
		t.Errorf("lease expiry DELETE without its prev_kv: %+v", r.Events[0])
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("lease of 2s expired after %v", el)
	}
	if ttl, err := cli.TimeToLive(ctx, lg.ID); err != nil || ttl.TTL != -1 {
		t.Errorf("TimeToLive of an expired lease: %+v %v, want TTL -1", ttl, err)
	}

	// Progress on request: the current revision, no events.
	if err := cli.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	r = next()
	if !r.IsProgressNotify() || r.Header.Revision < tr.Header.Revision {
		t.Fatalf("after RequestProgress: %+v, want a progress notification", r)
	}

	// Cancel: the channel closes.
	wcancel()
	select {
	case _, ok := <-wch:
		for ok {
			_, ok = <-wch
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch channel did not close after cancel")
	}
	// The stream still serves a new watch after the cancel.
	w2 := cli.Watch(ctx, "z", clientv3.WithRev(1))
	if _, err := cli.Put(ctx, "z", "1"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w2:
		if len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "1" {
			t.Fatalf("second watch: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second watch: nothing within 10s")
	}
}

// TestEtcdBadInput requires etcd's codes and messages for bad requests, and
// that nothing is half-applied.
func TestEtcdBadInput(t *testing.T) {
	t.Parallel()
	d, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	pr, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	rev := pr.Header.Revision

	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"value over 1.5 MiB", func() error {
			_, err := cli.Put(ctx, "big", strings.Repeat("x", 1536*1024+1))
			return err
		}, rpctypes.ErrRequestTooLarge},
		{"empty key", func() error { _, err := cli.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"duplicate key in txn", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"unknown lease", func() error {
			_, err := cli.Put(ctx, "l", "v", clientv3.WithLease(0x1234))
			return err
		}, rpctypes.ErrLeaseNotFound},
		{"keepalive of an unknown lease", func() error {
			_, err := cli.KeepAliveOnce(ctx, 0x1234)
			return err
		}, rpctypes.ErrLeaseNotFound},
		{"revoke of an unknown lease", func() error { _, err := cli.Revoke(ctx, 0x1234); return err }, rpctypes.ErrLeaseNotFound},
		{"get --rev beyond the current revision", func() error {
			_, err := cli.Get(ctx, "k", clientv3.WithRev(rev+1000))
			return err
		}, rpctypes.ErrFutureRev},
	}
	for _, tc := range cases {
		err := tc.do()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A compaction changes no key (etcd_watch_test.go): the revision stays.
	if _, err = cli.Compact(ctx, 1); err != nil {
		t.Errorf("compact: %v", err)
	}

	// Nothing was written by the refused requests.
	gr, err := cli.Get(ctx, "", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if gr.Count != 1 || gr.Header.Revision != rev {
		t.Errorf("after the refused requests: %d keys at revision %d, want 1 at %d", gr.Count, gr.Header.Revision, rev)
	}
	if rows := kvRows(t, do(t, dial(t, d), "kv get d").Rows); len(rows) != 0 {
		t.Errorf("the refused txn left %+v", rows)
	}
}
