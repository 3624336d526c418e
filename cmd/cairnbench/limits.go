package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairnhq/cairn/internal/cairntest"
)

// The floods of the hardening issue (finding 4 and 7): one client that
// opens 21,000 socket connections, and one that asks for 300,000 etcd
// watches. Before the limits the first exhausted descriptors (status hung)
// and the second grew the daemon to the OOM killer.
const (
	floodConns   = 21000
	floodWatches = 300000
	// floodWatchStreams carry the watch requests: within the 1,024
	// streams one connection may hold.
	floodWatchStreams = 300
)

// Bounds the table checks. The daemon holds at most --max-conns
// connections (8,192 by default) however many are attempted, about 18 KiB
// each (a goroutine, a read buffer); one etcd connection holds at most
// 10,000 watches, a goroutine and a queue each, and the flood's refused
// creates are answered as they come, their answers garbage once sent.
// Before the limits the first flood hung the daemon and the second took
// it to 6 GB and the OOM killer.
const (
	connFloodBoundMiB  = 256
	watchFloodBoundMiB = 512
)

// runLimits measures the daemon's peak RSS (VmHWM, reset before each
// flood) under both floods, and whether it still answers afterwards.
func runLimits(ctx context.Context, b *bench) error {
	n := floodConns
	w := floodWatches
	if b.cfg.quick {
		n, w = 3000, 30000
	}
	// The connections are held by floodChildren processes, so no one
	// process needs more descriptors than a hard limit of 20,000 allows.
	if err := raiseNoFile(n/floodChildren + 1024); err != nil {
		b.skip("limits", fmt.Sprintf("a process cannot hold %d descriptors: %v", n/floodChildren, err))
		return nil
	}
	etcdAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	d, err := b.newDaemon(filepath.Join(b.tmp, "limits-data"))
	if err != nil {
		return err
	}
	d.Extra = append(d.Extra, "--etcd", etcdAddr)
	if _, _, err := d.start(ctx); err != nil {
		return err
	}
	pid := d.Cmd.Process.Pid
	idle, err := cairntest.RSS(pid)
	if err != nil {
		return err
	}
	b.add("daemon RSS, idle with the etcd API on", "", mib(idle), nil)

	// The socket flood.
	if err := resetPeak(pid); err != nil {
		return err
	}
	refused, release, err := socketFlood(ctx, d.Socket, n)
	if err != nil {
		return err
	}
	peak, err := cairntest.PeakRSS(pid)
	release()
	if err != nil {
		return err
	}
	b.logf("socket flood: %d connections attempted, %d refused at accept with an error line", n, refused)
	b.add(fmt.Sprintf("daemon peak RSS, one client opening %d socket connections", n),
		fmt.Sprintf("bounded: < %d MiB", connFloodBoundMiB), mib(peak), ptr(peak < connFloodBoundMiB<<20))
	if _, err := d.TryStatus(ctx); err != nil {
		return fmt.Errorf("status after the socket flood: %w", err)
	}

	// The etcd watch flood, on a daemon of its own so that its peak is
	// its own.
	if err := d.stop(syscall.SIGTERM); err != nil {
		return err
	}
	if d, err = b.newDaemon(filepath.Join(b.tmp, "limits-etcd-data")); err != nil {
		return err
	}
	d.Extra = append(d.Extra, "--etcd", etcdAddr)
	if _, _, err := d.start(ctx); err != nil {
		return err
	}
	pid = d.Cmd.Process.Pid
	created, canceled, err := watchFlood(ctx, etcdAddr, w)
	if err != nil {
		return err
	}
	peak, err = cairntest.PeakRSS(pid)
	if err != nil {
		return err
	}
	b.logf("etcd watch flood: %d watches asked for on one connection, %d created, %d canceled for the cap", w, created, canceled)
	b.add(fmt.Sprintf("daemon peak RSS, one etcd client asking for %d watches", w),
		fmt.Sprintf("bounded: < %d MiB", watchFloodBoundMiB), mib(peak), ptr(peak < watchFloodBoundMiB<<20 && created <= 10000))
	if _, err := d.TryStatus(ctx); err != nil {
		return fmt.Errorf("status after the watch flood: %w", err)
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// resetPeak resets the process's VmHWM to its current RSS
// (/proc/PID/clear_refs, "5").
func resetPeak(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// raiseNoFile raises this process's descriptor limit to at least n.
func raiseNoFile(n int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= uint64(n) {
		return nil
	}
	if lim.Max < uint64(n) {
		lim.Max = uint64(n) // root may raise the hard limit
	}
	lim.Cur = lim.Max
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// floodChildren is how many processes share the socket flood.
const floodChildren = 2

// floodChildEnv names the socket a child process of the benchmark floods
// (the count in floodChildNEnv); see floodChild.
const (
	floodChildEnv  = "CAIRNBENCH_FLOOD_SOCKET"
	floodChildNEnv = "CAIRNBENCH_FLOOD_N"
)

// socketFlood has floodChildren copies of this program open n
// connections to the socket in all and hold them; it returns how many the
// daemon refused, once all are open, and a func that ends the children.
func socketFlood(ctx context.Context, socket string, n int) (refused int, release func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	var cmds []*exec.Cmd
	var stdins []io.Closer
	release = func() {
		for _, in := range stdins {
			in.Close()
		}
		for _, c := range cmds {
			c.Wait()
		}
	}
	for range floodChildren {
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), floodChildEnv+"="+socket, floodChildNEnv+"="+strconv.Itoa(n/floodChildren))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			release()
			return 0, nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			release()
			return 0, nil, err
		}
		if err := cmd.Start(); err != nil {
			release()
			return 0, nil, err
		}
		cmds, stdins = append(cmds, cmd), append(stdins, in)
		var r int
		if _, err := fmt.Fscan(out, &r); err != nil {
			release()
			return 0, nil, fmt.Errorf("flood child: %w", err)
		}
		refused += r
	}
	return refused, release, nil
}

// floodChild is the benchmark run as a flood child: it opens its share of
// connections, prints how many the daemon refused (an error line, then
// EOF), and holds the rest until its stdin closes.
func floodChild(socket string, n int) {
	if err := raiseNoFile(n + 64); err != nil {
		fmt.Fprintf(os.Stderr, "flood child: %v\n", err)
		os.Exit(1)
	}
	var held []net.Conn
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range n {
		c, err := net.Dial("unix", socket)
		for try := 0; errors.Is(err, syscall.EAGAIN) && try < 1000; try++ {
			// The listen backlog is full: the daemon is behind on accepts.
			time.Sleep(time.Millisecond)
			c, err = net.Dial("unix", socket)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "flood child: dial after %d connections: %v\n", len(held), err)
			os.Exit(1)
		}
		held = append(held, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); err == nil {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Println(refused.Load())
	io.Copy(io.Discard, os.Stdin)
	closeAll(held)
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// watchFlood asks for w watches over one gRPC connection, spread over
// floodWatchStreams Watch streams, and counts the created and the
// canceled ones.
func watchFlood(ctx context.Context, addr string, w int) (created, canceled int64, err error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, 0, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var createdN, canceledN atomic.Int64
	errs := make(chan error, floodWatchStreams)
	per := w / floodWatchStreams
	for s := range floodWatchStreams {
		go func() {
			stream, err := pb.NewWatchClient(cc).Watch(ctx)
			if err != nil {
				errs <- err
				return
			}
			go func() {
				for i := range per {
					key := []byte("flood/" + strconv.Itoa(s) + "/" + strconv.Itoa(i))
					if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: key}}}); err != nil {
						return
					}
				}
			}()
			for got := 0; got < per; {
				r, err := stream.Recv()
				if err != nil {
					errs <- err
					return
				}
				if !r.Created {
					continue
				}
				got++
				if r.Canceled {
					canceledN.Add(1)
				} else {
					createdN.Add(1)
				}
			}
			errs <- nil
		}()
	}
	for range floodWatchStreams {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("the watch flood did not finish in 5 minutes: %w", err)
	}
	return createdN.Load(), canceledN.Load(), err
}
