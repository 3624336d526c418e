package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdctlWatchLines runs `etcdctl watch ARGS…` and returns its first n
// stdout lines, then stops it.
func etcdctlWatchLines(t *testing.T, bin, addr string, n int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints=" + addr, "watch"}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	sc := bufio.NewScanner(out)
	var lines []string
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// TestEtcdctlCompaction: `etcdctl compaction N` succeeds and is journaled
// as kv.compact; below N, `get --rev` and `watch --rev` answer etcd's
// "required revision has been compacted" (the default,
// --etcd-honour-compaction), also after a restart, while `kv history` and
// `kv get at=` still read every revision; with the flag off the etcd API
// reads below N as well.
func TestEtcdctlCompaction(t *testing.T) {
	bin := etcdctlBin(t)
	d, addr := startEtcdDaemon(t)
	run := func(args ...string) (string, string, error) { return etcdctl(t, bin, addr, "", args...) }
	var revs []int64
	for _, v := range []string{"one", "two", "three", "four"} {
		out, errOut, err := run("put", "k", v, "-w", "json")
		if err != nil {
			t.Fatalf("put: %v %s", err, errOut)
		}
		revs = append(revs, headerRev(t, out))
	}
	out, errOut, err := run("compaction", fmt.Sprint(revs[2]))
	if err != nil || strings.TrimSpace(out) != fmt.Sprintf("compacted revision %d", revs[2]) {
		t.Fatalf("etcdctl compaction %d: %q %q %v", revs[2], out, errOut, err)
	}
	// Again: etcd's error.
	if _, errOut, err := run("compaction", fmt.Sprint(revs[2])); err == nil || !strings.Contains(errOut, "mvcc: required revision has been compacted") {
		t.Errorf("compaction again: %v %q", err, errOut)
	}
	c := dial(t, d)
	evs := events(t, c, "events kind=kv.compact")
	if len(evs) != 1 || evs[0].Subject != fmt.Sprint(revs[2]) || evs[0].Actor.Via != "etcd" || fmt.Sprint(evs[0].Data["rev"]) != fmt.Sprint(revs[2]) {
		t.Fatalf("kv.compact events: %+v", evs)
	}

	honoured := func(when string) {
		t.Helper()
		if out, errOut, err := run("get", "k", fmt.Sprintf("--rev=%d", revs[0])); err == nil || !strings.Contains(errOut, "mvcc: required revision has been compacted") {
			t.Errorf("%s: get --rev=%d: %v %q %q; want ErrCompacted", when, revs[0], err, out, errOut)
		}
		if out, _, err := run("get", "k", fmt.Sprintf("--rev=%d", revs[2]), "--print-value-only"); err != nil || strings.TrimSpace(out) != "three" {
			t.Errorf("%s: get --rev=%d (the compact revision): %q %v", when, revs[2], out, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w := exec.CommandContext(ctx, bin, "--endpoints="+addr, "watch", "k", fmt.Sprintf("--rev=%d", revs[1]))
		w.Env = append(os.Environ(), "ETCDCTL_API=3")
		wout, werr := w.CombinedOutput()
		if werr == nil || !strings.Contains(string(wout), "required revision has been compacted") {
			t.Errorf("%s: watch --rev=%d: %v %q; want it canceled as compacted", when, revs[1], werr, wout)
		}
		if lines := etcdctlWatchLines(t, bin, addr, 3, "k", fmt.Sprintf("--rev=%d", revs[2])); strings.Join(lines, "|") != "PUT|k|three" {
			t.Errorf("%s: watch --rev=%d: %q", when, revs[2], lines)
		}
		// client/v3 sees the errors etcd's clients branch on.
		cli := etcdClient(t, addr)
		if _, err := cli.Get(ctx, "k", clientv3.WithRev(revs[0])); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("%s: clientv3 get at %d: %v, want ErrCompacted", when, revs[0], err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		wr := <-cli.Watch(wctx, "k", clientv3.WithRev(revs[0]))
		wcancel()
		if wr.CompactRevision != revs[2] || !errors.Is(wr.Err(), rpctypes.ErrCompacted) {
			t.Errorf("%s: clientv3 watch from %d: compact revision %d, err %v; want %d, ErrCompacted", when, revs[0], wr.CompactRevision, wr.Err(), revs[2])
		}
		// cairn's verbs read every revision.
		if rows := kvRows(t, do(t, dial(t, d), "kv history k").Rows); len(rows) != 4 || rows[0].Value != "one" {
			t.Errorf("%s: kv history: %+v", when, rows)
		}
		if rows := kvRows(t, do(t, dial(t, d), fmt.Sprintf("kv get k at=%d", revs[0])).Rows); len(rows) != 1 || rows[0].Value != "one" {
			t.Errorf("%s: kv get at=%d: %+v", when, revs[0], rows)
		}
	}
	honoured("after compaction")
	d.Stop()
	d.Restart()
	honoured("after a restart")

	// Not honoured: the etcd API reads and replays below the compaction.
	d.Stop()
	d.Extra = append(d.Extra, "--etcd-honour-compaction=false")
	d.Restart()
	if out, errOut, err := run("get", "k", fmt.Sprintf("--rev=%d", revs[0]), "--print-value-only"); err != nil || strings.TrimSpace(out) != "one" {
		t.Errorf("not honoured: get --rev=%d: %q %q %v", revs[0], out, errOut, err)
	}
	if lines := etcdctlWatchLines(t, bin, addr, 6, "k", fmt.Sprintf("--rev=%d", revs[0])); strings.Join(lines, "|") != "PUT|k|one|PUT|k|two" {
		t.Errorf("not honoured: watch --rev=%d: %q", revs[0], lines)
	}
	// A compaction at or below the latest is still etcd's error.
	if _, errOut, err := run("compaction", fmt.Sprint(revs[1])); err == nil || !strings.Contains(errOut, "required revision has been compacted") {
		t.Errorf("not honoured: compaction below the latest: %v %q", err, errOut)
	}
}

// TestEtcdWatchFanOut: 1,000 single-key watches and a few prefix watches
// over 4 client connections; 10 txns of 100 keys reach each watch with
// exactly its keys, one response per revision, and a watch created
// afterwards from the first txn's revision replays them all from the
// journal before it goes live.
func TestEtcdWatchFanOut(t *testing.T) {
	_, addr := startEtcdDaemon(t)
	const (
		nWatch  = 1000
		perTxn  = 100
		nPrefix = 4
	)
	clis := make([]*clientv3.Client, 4)
	for i := range clis {
		clis[i] = etcdClient(t, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type got struct {
		mu   sync.Mutex
		resp []clientv3.WatchResponse
	}
	gots := make([]*got, nWatch+nPrefix)
	var wg sync.WaitGroup
	watch := func(i int, ch clientv3.WatchChan) {
		g := &got{}
		gots[i] = g
		created := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for wr := range ch {
				if first {
					first = false
					close(created) // WithCreatedNotify's first response
					continue
				}
				g.mu.Lock()
				g.resp = append(g.resp, wr)
				g.mu.Unlock()
			}
		}()
		select {
		case <-created:
		case <-ctx.Done():
			t.Fatal("watch not created")
		}
	}
	for i := range nWatch {
		watch(i, clis[i%len(clis)].Watch(ctx, fmt.Sprintf("fan/%04d", i), clientv3.WithCreatedNotify()))
	}
	for i := range nPrefix {
		watch(nWatch+i, clis[i%len(clis)].Watch(ctx, "fan/", clientv3.WithPrefix(), clientv3.WithCreatedNotify()))
	}
	var txnRevs []int64
	start := time.Now()
	for tx := range nWatch / perTxn {
		ops := make([]clientv3.Op, perTxn)
		for j := range ops {
			k := tx*perTxn + j
			ops[j] = clientv3.OpPut(fmt.Sprintf("fan/%04d", k), fmt.Sprintf("v%d", k))
		}
		r, err := clis[0].Txn(ctx).Then(ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		txnRevs = append(txnRevs, r.Header.Revision)
	}
	// A late watch replays them.
	late := etcdClient(t, addr).Watch(ctx, "fan/", clientv3.WithPrefix(), clientv3.WithRev(txnRevs[0]))
	count := func(g *got) int {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
		for _, r := range g.resp {
			n += len(r.Events)
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, g := range gots {
		want := 1
		if i >= nWatch {
			want = nWatch
		}
		for count(g) < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("%d txns of %d keys reached %d watches in %v", len(txnRevs), perTxn, nWatch+nPrefix, time.Since(start))
	var lateEvents int
	var lateRevs []int64
	for lateEvents < nWatch {
		select {
		case wr := <-late:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			lateEvents += len(wr.Events)
			lateRevs = append(lateRevs, wr.Header.Revision)
		case <-ctx.Done():
			t.Fatalf("late watch: %d events", lateEvents)
		}
	}
	if fmt.Sprint(lateRevs) != fmt.Sprint(txnRevs) {
		t.Errorf("late watch revisions %v, want the txns' %v", lateRevs, txnRevs)
	}
	cancel()
	wg.Wait()
	for i, g := range gots {
		if i < nWatch {
			rev := txnRevs[i/perTxn]
			if len(g.resp) != 1 || len(g.resp[0].Events) != 1 || g.resp[0].Header.Revision != rev ||
				string(g.resp[0].Events[0].Kv.Value) != fmt.Sprintf("v%d", i) || g.resp[0].Events[0].Kv.ModRevision != rev {
				t.Fatalf("watch of fan/%04d got %+v, want one event at %d", i, g.resp, rev)
			}
			continue
		}
		if len(g.resp) != len(txnRevs) {
			t.Fatalf("prefix watch got %d responses, want %d (one per txn)", len(g.resp), len(txnRevs))
		}
		for j, r := range g.resp {
			if r.Header.Revision != txnRevs[j] || len(r.Events) != perTxn {
				t.Fatalf("prefix watch response %d: revision %d, %d events", j, r.Header.Revision, len(r.Events))
			}
		}
	}
}
