package daemon

import (
	"context"
	"time"
)

// workers runs requests on goroutines that outlive one request. A
// request's stack grows through parsing, the journal and pebble; a fresh
// goroutine per request pays for that growth each time (runtime.newstack
// was 6% of the daemon's CPU under 64 emitting clients). A request goes to
// a worker waiting for one, else to a new worker; a worker that has had no
// request for idleWorker ends, and all end with ctx.
type workers struct {
	ctx  context.Context
	jobs chan func() // unbuffered: a send succeeds only to a waiting worker
}

// idleWorker is how long a worker waits for its next request.
const idleWorker = 10 * time.Second

func newWorkers(ctx context.Context) *workers {
	return &workers{ctx: ctx, jobs: make(chan func())}
}

// run starts job on a waiting worker or a new one; it never blocks.
func (w *workers) run(job func()) {
	select {
	case w.jobs <- job:
	default:
		go w.loop(job)
	}
}

func (w *workers) loop(job func()) {
	idle := time.NewTimer(idleWorker)
	defer idle.Stop()
	for {
		job()
		idle.Reset(idleWorker)
		select {
		case job = <-w.jobs:
		case <-idle.C:
			return
		case <-w.ctx.Done():
			return
		}
	}
}
