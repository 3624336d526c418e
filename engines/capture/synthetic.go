package capture

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/cairnhq/cairn/journal"
)

func init() {
	RegisterSource("synthetic", func() Source { return &synthetic{} })
}

// synthetic emits made-up events at full speed until stopped, for
// benchmarks and overload tests. It needs no privilege.
type synthetic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Describer = (*synthetic)(nil)

func (s *synthetic) Description() string {
	return "made-up capture.synthetic events at full speed (or rate=N a second), for benchmarks and overload tests"
}

// Start begins emitting. The events go out at full speed: the source never
// waits, so a pipeline that cannot keep up drops (and counts) them.
func (s *synthetic) Start(ctx context.Context, cfg SourceConfig, emit Emit) error {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		pid := int64(os.Getpid()) + 1 // not the daemon: self-exclusion keeps the daemon's own pid out
		if cfg.Rate > 0 {
			s.paced(ctx, cfg.Rate, pid, cfg.Snaplen, emit)
			return
		}
		for n := int64(1); ; n++ {
			if n%1024 == 0 {
				if ctx.Err() != nil {
					return
				}
				// Let the writer run on a small machine: the source
				// must not starve the journal it feeds.
				runtime.Gosched()
			}
			emit(syntheticBody(n, pid, cfg.Snaplen))
		}
	}()
	return nil
}

// maxSyntheticRate bounds rate=: far above what a journal stores, and a
// schedule that stays a count, not a flood.
const maxSyntheticRate = 10_000_000

// paced emits rate events a second, catching up with the schedule every
// millisecond (a steady load, as a busy host makes, rather than bursts).
// A backlog of more than a second is dropped rather than chased, and the
// context is checked within a burst, so stop is prompt at any rate.
func (s *synthetic) paced(ctx context.Context, rate, pid int64, snaplen int, emit Emit) {
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	n := int64(1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds()*float64(rate)) + 1
		if due-n > rate {
			n = due - rate // more than a second behind: skip, do not chase
		}
		for ; n < due; n++ {
			if n%1024 == 0 && ctx.Err() != nil {
				return
			}
			emit(syntheticBody(n, pid, snaplen))
		}
	}
}

// syntheticBody is event n of the synthetic source: a body shaped like a
// real process event, so filters and encoding cost what they would.
func syntheticBody(n, pid int64, snaplen int) *journal.Body {
	data := map[string]any{"n": n}
	if snaplen > 0 {
		buf := make([]byte, snaplen)
		for i := range buf {
			buf[i] = byte('a' + (int(n)+i)%26)
		}
		data["data"], data["io_dir"], data["bytes"] = buf, "r", int64(snaplen)
	}
	return &journal.Body{
		Kind:    "capture.synthetic",
		Subject: "pid/" + strconv.FormatInt(pid, 10),
		Actor:   journal.SystemActor(),
		Evt:     &journal.Evt{Type: "synthetic", Num: n, Time: time.Now().UnixNano()},
		Proc:    &journal.Proc{Name: "synthetic", PID: pid, PPID: 1, Exe: "/synthetic"},
		Data:    data,
	}
}

// Stop stops emitting and returns once the emitting goroutine has ended.
func (s *synthetic) Stop() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}
