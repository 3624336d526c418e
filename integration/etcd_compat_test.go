package integration

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// etcd compatibility as client/v3's concurrency recipes and etcdctl's
// lock, elect, endpoint health and alarm commands use it (docs/kv.md,
// "etcd compatibility").

// TestEtcdMutex: TryLock against a held lock, a holder whose session
// expires (its client gone) hands the lock on, and 4 goroutines × 25
// lock/unlock rounds never overlap.
func TestEtcdMutex(t *testing.T) {
	t.Parallel()
	_, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m1, m2 := concurrency.NewMutex(s1, "locks/a"), concurrency.NewMutex(s2, "locks/a")
	if err := m1.TryLock(ctx); err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	if err := m2.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLocked", err)
	}
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.TryLock(ctx); err != nil {
		t.Fatalf("TryLock after the holder unlocked: %v", err)
	}
	if err := m2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// Session expiry: the holder's client goes away without unlocking;
	// its lease (TTL 2 s, the minimum) expires and the waiter gets the
	// lock.
	gone := etcdClient(t, addr)
	sg, err := concurrency.NewSession(gone, concurrency.WithTTL(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := concurrency.NewMutex(sg, "locks/b").Lock(ctx); err != nil {
		t.Fatal(err)
	}
	gone.Close() // no unlock, no revoke: only the lease's expiry frees it
	start := time.Now()
	mb := concurrency.NewMutex(s1, "locks/b")
	if err := mb.Lock(ctx); err != nil {
		t.Fatalf("Lock after the holder's session expired: %v", err)
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("the lock came %v after the holder went away; its lease has TTL 2s", el)
	}
	if err := mb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// Contention: 4 goroutines, each with its own client and session,
	// lock and unlock 25 times; a counter held under the lock must never
	// see two holders.
	var holders, overlaps, rounds atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		c := etcdClient(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := concurrency.NewSession(c, concurrency.WithTTL(30))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			m := concurrency.NewMutex(s, "locks/c")
			for i := range 25 {
				if err := m.Lock(ctx); err != nil {
					errs <- fmt.Errorf("goroutine %d round %d: lock: %w", g, i, err)
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				rounds.Add(1)
				holders.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					errs <- fmt.Errorf("goroutine %d round %d: unlock: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d overlapping holders of the lock", n)
	}
	if n := rounds.Load(); n != 100 {
		t.Errorf("%d rounds under the lock, want 100", n)
	}
}

// TestEtcdElection: Campaign, Observe (the leader's proposals in order),
// Proclaim, Resign and a second candidate taking over.
func TestEtcdElection(t *testing.T) {
	t.Parallel()
	_, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	e1, e2 := concurrency.NewElection(s1, "elect/x"), concurrency.NewElection(s2, "elect/x")

	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	obs := concurrency.NewElection(s2, "elect/x").Observe(octx)
	next := func() string {
		t.Helper()
		select {
		case r, ok := <-obs:
			if !ok || len(r.Kvs) == 0 {
				t.Fatal("Observe ended")
			}
			return string(r.Kvs[0].Value)
		case <-ctx.Done():
			t.Fatal("no leader observed")
		}
		return ""
	}

	if err := e1.Campaign(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if v := next(); v != "one" {
		t.Fatalf("observed leader %q, want one", v)
	}
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "two") }()
	if err := e1.Proclaim(ctx, "one-again"); err != nil {
		t.Fatal(err)
	}
	if v := next(); v != "one-again" {
		t.Fatalf("observed %q after Proclaim, want one-again", v)
	}
	select {
	case err := <-won:
		t.Fatalf("the second candidate won while the first leads: %v", err)
	default:
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-won; err != nil {
		t.Fatalf("second candidate: %v", err)
	}
	if v := next(); v != "two" {
		t.Fatalf("observed %q after the leader resigned, want two", v)
	}
	lr, err := e1.Leader(ctx)
	if err != nil || string(lr.Kvs[0].Value) != "two" {
		t.Fatalf("Leader: %v %v, want two", lr, err)
	}
}

// TestEtcdSTM: 8 workers transfer between 5 accounts through the STM at
// each isolation level; every transfer commits (retrying on conflict) and
// the total is conserved.
func TestEtcdSTM(t *testing.T) {
	t.Parallel()
	_, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()

	levels := []struct {
		name string
		iso  concurrency.Isolation
	}{
		{"Serializable", concurrency.Serializable},
		{"SerializableSnapshot", concurrency.SerializableSnapshot},
		{"RepeatableReads", concurrency.RepeatableReads},
	}
	const accounts, workers, transfers, initial = 5, 8, 25, 100
	for _, lv := range levels {
		pfx := "stm/" + lv.name + "/"
		for i := range accounts {
			if _, err := cli.Put(ctx, pfx+strconv.Itoa(i), strconv.Itoa(initial)); err != nil {
				t.Fatal(err)
			}
		}
		var committed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for range transfers {
					from, to := rng.IntN(accounts), rng.IntN(accounts-1)
					if to >= from {
						to++
					}
					amount := 1 + rng.IntN(5)
					_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
						a, _ := strconv.Atoi(s.Get(pfx + strconv.Itoa(from)))
						b, _ := strconv.Atoi(s.Get(pfx + strconv.Itoa(to)))
						if a < amount {
							return nil // nothing to move
						}
						s.Put(pfx+strconv.Itoa(from), strconv.Itoa(a-amount))
						s.Put(pfx+strconv.Itoa(to), strconv.Itoa(b+amount))
						return nil
					}, concurrency.WithIsolation(lv.iso), concurrency.WithAbortContext(ctx))
					if err != nil {
						errs <- fmt.Errorf("%s worker %d: %w", lv.name, w, err)
						return
					}
					committed.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		gr, err := cli.Get(ctx, pfx, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, kv := range gr.Kvs {
			n, _ := strconv.Atoi(string(kv.Value))
			total += n
		}
		if total != accounts*initial || len(gr.Kvs) != accounts {
			t.Errorf("%s: total %d over %d accounts, want %d over %d", lv.name, total, len(gr.Kvs), accounts*initial, accounts)
		}
		if n := committed.Load(); n != workers*transfers {
			t.Errorf("%s: %d transfers committed, want %d", lv.name, n, workers*transfers)
		}
	}
}

// TestEtcdctlLockElect runs `etcdctl lock NAME -- cmd` (free, then waiting
// for a client/v3 holder) and `etcdctl elect` as candidate and observer.
func TestEtcdctlLockElect(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	_, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	out := etcdctlOK(t, bin, addr, "", "lock", "mylock", "--", "sh", "-c", "echo held $ETCD_LOCK_KEY")
	if !regexp.MustCompile(`^held mylock/[0-9a-f]+\n$`).MatchString(out) {
		t.Fatalf("etcdctl lock mylock -- echo: %q", out)
	}

	// Held by a client/v3 Mutex: etcdctl waits until it is unlocked.
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, "mylock")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--endpoints="+addr, "lock", "mylock", "--", "echo", "second")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	var lockOut strings.Builder
	cmd.Stdout = &lockOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Its waiter key appears under the lock's prefix…
	wch := cli.Watch(ctx, "mylock/", clientv3.WithPrefix())
	for waiting := false; !waiting; {
		gr, err := cli.Get(ctx, "mylock/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if waiting = gr.Count == 2; !waiting {
			select {
			case <-wch:
			case err := <-done:
				t.Fatalf("etcdctl lock finished while the lock was held: %v, output %q", err, lockOut.String())
			}
		}
	}
	select {
	case err := <-done:
		t.Fatalf("etcdctl lock finished while the lock was held: %v", err)
	default:
	}
	// …and it runs its command once the holder unlocks.
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || lockOut.String() != "second\n" {
		t.Fatalf("etcdctl lock after unlock: %v, output %q", err, lockOut.String())
	}

	// elect: a candidate prints its key and proposal and keeps leading; an
	// observer (-l) prints the leader's.
	lines := func(args ...string) (<-chan string, func()) {
		ectx, ecancel := context.WithCancel(ctx)
		c := exec.CommandContext(ectx, bin, append([]string{"--endpoints=" + addr}, args...)...)
		c.Env = append(os.Environ(), "ETCDCTL_API=3")
		pipe, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		ch := make(chan string, 16)
		go func() {
			defer close(ch)
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				ch <- sc.Text()
			}
		}()
		return ch, func() { ecancel(); c.Wait() }
	}
	read := func(ch <-chan string, what string) string {
		t.Helper()
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("%s: etcdctl ended", what)
			}
			return l
		case <-ctx.Done():
			t.Fatalf("%s: nothing printed", what)
		}
		return ""
	}
	cand, stopCand := lines("elect", "myelection", "p1")
	defer stopCand()
	if k := read(cand, "elect candidate"); !strings.HasPrefix(k, "myelection/") {
		t.Fatalf("elect candidate printed %q, want its key", k)
	}
	if v := read(cand, "elect candidate"); v != "p1" {
		t.Fatalf("elect candidate printed %q, want p1", v)
	}
	obs, stopObs := lines("elect", "-l", "myelection")
	defer stopObs()
	if k := read(obs, "elect -l"); !strings.HasPrefix(k, "myelection/") {
		t.Fatalf("elect -l printed %q, want the leader's key", k)
	}
	if v := read(obs, "elect -l"); v != "p1" {
		t.Fatalf("elect -l printed %q, want p1", v)
	}
}

// TestEtcdctlHealthAlarm: endpoint health and status, alarm list, an
// armed NOSPACE refusing puts until `alarm disarm`, hashkv and defrag.
func TestEtcdctlHealthAlarm(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	_, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) string { t.Helper(); return etcdctlOK(t, bin, addr, "", args...) }

	// etcdctl 3.4 prints endpoint health on stderr.
	health := func() (string, error) {
		out, errOut, err := etcdctl(t, bin, addr, "", "endpoint", "health")
		return out + errOut, err
	}
	run("put", "k", "v")
	if out, err := health(); err != nil || !strings.Contains(out, addr+" is healthy") {
		t.Fatalf("etcdctl endpoint health: %v %q", err, out)
	}
	if out := run("alarm", "list"); out != "" {
		t.Fatalf("etcdctl alarm list: %q, want no alarm", out)
	}
	if al, err := cli.AlarmList(ctx); err != nil || len(al.Alarms) != 0 {
		t.Fatalf("AlarmList: %v %v, want no alarm (etcdctl 3.5+'s endpoint health needs it)", al, err)
	}

	// Armed by a client, as etcd's tests do: puts are refused, deletes
	// and reads go on, health is bad, until alarm disarm.
	ar, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, Alarm: pb.AlarmType_NOSPACE, MemberID: 0xca1e_0000_0000_0002})
	if err != nil || len(ar.Alarms) != 1 {
		t.Fatalf("activate NOSPACE: %v %v", ar, err)
	}
	if out := run("alarm", "list"); !regexp.MustCompile(`^memberID:\d+ alarm:NOSPACE *\n$`).MatchString(out) {
		t.Fatalf("etcdctl alarm list with NOSPACE armed: %q", out)
	}
	// etcdctl 3.5+'s endpoint health reads AlarmList after its Get and
	// reports an endpoint with an alarm unhealthy (3.4's only does the Get).
	if al, err := cli.AlarmList(ctx); err != nil || len(al.Alarms) != 1 || al.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Errorf("AlarmList with NOSPACE armed: %v %v", al, err)
	}
	if _, errOut, err := etcdctl(t, bin, addr, "", "put", "k", "w"); err == nil || !strings.Contains(errOut, "database space exceeded") {
		t.Errorf("etcdctl put with NOSPACE armed: err %v, stderr %q", err, errOut)
	}
	if _, err := cli.Put(ctx, "k", "w"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("put with NOSPACE armed: %v, want ErrNoSpace", err)
	}
	if out := run("get", "k"); out != "k\nv\n" {
		t.Errorf("get with NOSPACE armed: %q", out)
	}
	var st []struct {
		Status struct {
			Version string   `json:"version"`
			Errors  []string `json:"errors"`
		} `json:"Status"`
	}
	if err := json.Unmarshal([]byte(run("endpoint", "status", "-w", "json")), &st); err != nil || len(st) != 1 ||
		st[0].Status.Version != "3.6.6" || len(st[0].Status.Errors) != 1 || !strings.Contains(st[0].Status.Errors[0], "NOSPACE") {
		t.Errorf("endpoint status with NOSPACE armed: %+v %v; want version 3.6.6 and the alarm in errors", st, err)
	}
	if out := run("alarm", "disarm"); !strings.Contains(out, "alarm:NOSPACE") {
		t.Errorf("etcdctl alarm disarm: %q", out)
	}
	if out := run("alarm", "list"); out != "" {
		t.Fatalf("etcdctl alarm list after disarm: %q", out)
	}
	run("put", "k", "w")
	if out, err := health(); err != nil || !strings.Contains(out, "is healthy") {
		t.Errorf("etcdctl endpoint health after disarm: %v %q", err, out)
	}

	// hashkv: the same for the same state, at the revision asked.
	pr, err := cli.Put(ctx, "h", "1")
	if err != nil {
		t.Fatal(err)
	}
	hash := func(rev int64) (uint32, int64) {
		t.Helper()
		r, err := cli.HashKV(ctx, addr, rev)
		if err != nil {
			t.Fatal(err)
		}
		return r.Hash, r.HashRevision
	}
	h1, at := hash(0)
	if at != pr.Header.Revision {
		t.Errorf("HashKV(0) at %d, want the current revision %d", at, pr.Header.Revision)
	}
	if _, err := cli.Put(ctx, "h", "2"); err != nil {
		t.Fatal(err)
	}
	if h, _ := hash(0); h == h1 {
		t.Error("HashKV did not change with the state")
	}
	if h, _ := hash(pr.Header.Revision); h != h1 {
		t.Errorf("HashKV at %d: %08x, want %08x as it was", pr.Header.Revision, h, h1)
	}
	if out := run("endpoint", "hashkv"); !strings.Contains(out, addr) {
		t.Errorf("etcdctl endpoint hashkv: %q", out)
	}
	if out := run("defrag"); !strings.Contains(out, "Finished defragmenting") {
		t.Errorf("etcdctl defrag: %q", out)
	}
	if out := run("get", "h"); out != "h\n2\n" {
		t.Errorf("get after defrag: %q", out)
	}
}

// TestEtcdNoSpaceAlarm fills a small tmpfs below the free-space reserve:
// the put that fails arms etcd's NOSPACE alarm, puts answer etcd's
// "database space exceeded", and once there is room again the alarm stays
// until `alarm disarm`.
func TestEtcdNoSpaceAlarm(t *testing.T) {
	bin := etcdctlBin(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs; CI runs as root")
	}
	mnt := shortTempDir(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("this machine cannot mount tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	addr := freeAddr(t)
	startDaemon(t, withData(filepath.Join(mnt, "data")), withFlags("--reserve-mb", "40", "--etcd", addr))
	run := func(args ...string) string { t.Helper(); return etcdctlOK(t, bin, addr, "", args...) }

	if out := run("alarm", "list"); out != "" {
		t.Fatalf("alarm list before the disk filled: %q", out)
	}
	// Fill through the etcd API until a put fails: that failure arms the
	// alarm, which then stays (pebble may free some space by itself
	// afterwards, as TestDiskNearlyFull notes).
	cli := etcdClient(t, addr)
	raw := make([]byte, 48<<10) // random: pebble cannot compress it away
	for i := 0; ; i++ {
		crand.Read(raw)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("fill/%d", i), base64.StdEncoding.EncodeToString(raw))
		cancel()
		if errors.Is(err, rpctypes.ErrNoSpace) {
			break
		}
		if err != nil || i > 2000 {
			t.Fatalf("filling the disk: %v after %d puts", err, i)
		}
	}
	if out := run("alarm", "list"); !strings.Contains(out, "alarm:NOSPACE") {
		t.Fatalf("alarm list below the reserve: %q, want NOSPACE", out)
	}
	if _, errOut, err := etcdctl(t, bin, addr, "", "put", "k", "v"); err == nil || !strings.Contains(errOut, "database space exceeded") {
		t.Fatalf("put below the reserve: err %v, stderr %q", err, errOut)
	}

	// Room again: the alarm stays armed (puts refused) until disarmed.
	if out, err := exec.Command("mount", "-o", "remount,size=512m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	if _, errOut, err := etcdctl(t, bin, addr, "", "put", "k", "v"); err == nil || !strings.Contains(errOut, "database space exceeded") {
		t.Fatalf("put with room again but NOSPACE still armed: err %v, stderr %q", err, errOut)
	}
	run("alarm", "disarm")
	if out := run("alarm", "list"); out != "" {
		t.Fatalf("alarm list after disarm with room: %q", out)
	}
	run("put", "k", "v")
}

// TestEtcdHeaderRevision: header.revision is the KV revision (the seq of
// the last event that changed a key): lease grants, keepalive checkpoints
// and other engines' events leave it; `get --rev=N` carries the current
// one; `lease grant 0` and `1` give etcd's minimum TTL of 2 s.
func TestEtcdHeaderRevision(t *testing.T) {
	t.Parallel()
	bin := etcdctlBin(t)
	d, addr := startEtcdDaemon(t)
	cli := etcdClient(t, addr)
	c := dial(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) string { t.Helper(); return etcdctlOK(t, bin, addr, "", args...) }

	first := headerRev(t, run("put", "a", "1", "-w", "json"))
	rev := headerRev(t, run("put", "a", "2", "-w", "json"))

	// Events that change no key: a lease grant (etcdctl and client/v3), a
	// keepalive past the recorded deadline (a lease.checkpoint), an emit.
	for _, ttl := range []string{"0", "1"} {
		out := run("lease", "grant", ttl)
		if !regexp.MustCompile(`lease [0-9a-f]+ granted with TTL\(2s\)`).MatchString(out) {
			t.Errorf("etcdctl lease grant %s: %q, want TTL(2s)", ttl, out)
		}
	}
	lg, err := cli.Grant(ctx, 1)
	if err != nil || lg.TTL != 2 {
		t.Fatalf("Grant(1): %+v %v, want TTL 2", lg, err)
	}
	if lg.ResponseHeader.Revision != rev {
		t.Errorf("LeaseGrant header revision %d, want the KV revision %d", lg.ResponseHeader.Revision, rev)
	}
	before := len(events(t, c, "events kind=lease.checkpoint"))
	ka, err := cli.KeepAliveOnce(ctx, lg.ID)
	if err != nil || ka.TTL != 2 {
		t.Fatalf("KeepAliveOnce: %+v %v", ka, err)
	}
	if n := len(events(t, c, "events kind=lease.checkpoint")); n <= before {
		t.Fatalf("the keepalive wrote no lease.checkpoint (%d before, %d after)", before, n)
	}
	if ka.ResponseHeader.Revision != rev {
		t.Errorf("keepalive header revision %d, want %d", ka.ResponseHeader.Revision, rev)
	}
	em := emit(t, c, "emit app.deploy web v=3")
	if em.Seq <= rev {
		t.Fatalf("emit seq %d, want past %d", em.Seq, rev)
	}
	if got := headerRev(t, run("get", "a", "-w", "json")); got != rev {
		t.Errorf("get header revision %d after lease and emit events (seq %d), want the KV revision %d", got, em.Seq, rev)
	}
	// get --rev=N answers the old value with the current revision.
	out := run("get", "a", fmt.Sprintf("--rev=%d", first), "-w", "json")
	var gr struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
		Kvs []struct {
			Value []byte `json:"value"`
		} `json:"kvs"`
	}
	if err := json.Unmarshal([]byte(out), &gr); err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "1" || gr.Header.Revision != rev {
		t.Errorf("get --rev=%d -w json: %s; want value 1 and header revision %d", first, out, rev)
	}
	st, err := cli.Status(ctx, addr)
	if err != nil || st.Header.Revision != rev || st.RaftIndex != uint64(rev) {
		t.Errorf("status: %+v %v; want revision and raft index %d", st, err, rev)
	}
	// A write moves it to the write's own revision.
	if next := headerRev(t, run("put", "a", "3", "-w", "json")); next <= em.Seq {
		t.Errorf("put after the emit at %d: revision %d", em.Seq, next)
	}
}

// TestEtcdProgressInterval: --etcd-progress-interval sets how often a
// quiet watch that asked for progress notifications gets one.
func TestEtcdProgressInterval(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	startDaemon(t, withFlags("--etcd", addr, "--etcd-progress-interval", "300ms"))
	cli := etcdClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, err := cli.Put(ctx, "p", "1")
	if err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(ctx, "nothing", clientv3.WithProgressNotify())
	start := time.Now()
	for n := 0; n < 2; {
		select {
		case r := <-wch:
			if r.IsProgressNotify() {
				if r.Header.Revision != pr.Header.Revision {
					t.Fatalf("progress at %d, want %d", r.Header.Revision, pr.Header.Revision)
				}
				n++
			}
		case <-ctx.Done():
			t.Fatal("no progress notifications within 30s with --etcd-progress-interval 300ms")
		}
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("two progress notifications took %v at a 300ms interval", el)
	}
}
