package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/engines/kv"
)

// progressInterval is how often a watch created with progress_notify hears
// that nothing changed when Serve is given no interval (the daemon's
// --etcd-progress-interval), etcd's default. Tests shorten it.
var progressInterval = 10 * time.Minute

// tooManyWatches is the reason a watch over the connection's cap is
// canceled with; the server makes it once, as a flood asks for it
// hundreds of thousands of times.
func tooManyWatches() string {
	return fmt.Sprintf("etcdserver: too many watches on this connection (the limit is %d); cancel some, or open another connection", maxWatchesPerConn)
}

// invalidWatchID marks a response that belongs to no watch (a progress
// answer to WatchProgressRequest, a failed create), as etcd's clients expect.
const invalidWatchID = -1

// watchService is etcd's Watch service on the KV engine's watches.
type watchService struct {
	pb.UnimplementedWatchServer
	*server
}

// watchStream is one client's bidirectional Watch stream, which multiplexes
// any number of watches.
type watchStream struct {
	srv    *server
	stream pb.Watch_WatchServer
	ctx    context.Context

	sendMu sync.Mutex // gRPC allows one Send at a time

	mu      sync.Mutex
	watches map[int64]*watch
	nextID  int64
	wg      sync.WaitGroup
}

// watch is one watch of a stream.
type watch struct {
	id      int64
	cancel  context.CancelFunc
	done    chan struct{} // closed when its Store.Watch has returned
	noPut   bool
	noDel   bool
	mu      sync.Mutex
	sentRev int64 // every change up to sentRev has been sent
	quiet   bool  // nothing sent since the last progress tick
	// replaying: the watch started in the past and has not yet delivered
	// a revision at or after its creation; until then its progress is
	// sentRev, not the current revision.
	replaying bool
	createRev int64
}

// safeRev is the revision a progress notification may claim for the watch:
// everything up to it has been sent. wt.mu must be held.
func (wt *watch) safeRev(current int64) int64 {
	if wt.replaying {
		return wt.sentRev
	}
	return max(current, wt.sentRev)
}

// Watch serves one Watch stream: creates, cancels and progress requests in,
// created/canceled answers, one response per revision and progress
// notifications out.
func (w *watchService) Watch(stream pb.Watch_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(w.ctx, cancel)
	defer stop()

	ws := &watchStream{srv: w.server, stream: stream, ctx: ctx, watches: map[int64]*watch{}}
	defer ws.wg.Wait()
	defer cancel()

	recvErr := make(chan error, 1)
	reqs := make(chan *pb.WatchRequest)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()

	for {
		select {
		case <-ctx.Done():
			if w.ctx.Err() != nil {
				return status.Error(codes.Unavailable, "etcdserver: cairn's etcd API is stopping")
			}
			return ctx.Err()
		case <-recvErr:
			return nil // the client closed its side (io.EOF) or went away
		case req := <-reqs:
			var err error
			switch u := req.RequestUnion.(type) {
			case *pb.WatchRequest_CreateRequest:
				err = ws.create(u.CreateRequest)
			case *pb.WatchRequest_CancelRequest:
				err = ws.cancelWatch(u.CancelRequest.WatchId)
			case *pb.WatchRequest_ProgressRequest:
				err = ws.progressAll()
			}
			if err != nil {
				return err
			}
		}
	}
}

func (ws *watchStream) send(r *pb.WatchResponse) error {
	ws.sendMu.Lock()
	defer ws.sendMu.Unlock()
	return ws.stream.Send(r)
}

// create starts a watch and answers created (or created and canceled, with
// the reason, when it cannot start).
func (ws *watchStream) create(c *pb.WatchCreateRequest) error {
	rev := ws.srv.store.Rev()
	if c == nil {
		return nil
	}
	if u := etcdUserOf(ws.ctx); u != "" && !ws.srv.auth.state().allowed(u, permRead, c.Key, c.RangeEnd) {
		return ws.send(&pb.WatchResponse{Header: header(rev), WatchId: invalidWatchID, Created: true, Canceled: true,
			CancelReason: rpctypes.ErrGRPCPermissionDenied.Error()})
	}
	remote := remoteOf(ws.ctx)
	if !ws.srv.takeWatch(remote) {
		return ws.send(&pb.WatchResponse{Header: header(rev), WatchId: invalidWatchID, Created: true, Canceled: true,
			CancelReason: ws.srv.tooManyWatches})
	}
	ws.mu.Lock()
	id := c.WatchId
	if id != 0 {
		if _, dup := ws.watches[id]; dup || id < 0 {
			ws.mu.Unlock()
			ws.srv.dropWatch(remote)
			return ws.send(&pb.WatchResponse{Header: header(rev), WatchId: invalidWatchID, Created: true, Canceled: true,
				CancelReason: fmt.Sprintf("mvcc: duplicate watch ID provided on the WatchStream: %d", id)})
		}
	} else {
		for {
			id = ws.nextID
			ws.nextID++
			if _, used := ws.watches[id]; !used {
				break
			}
		}
	}
	wctx, cancel := context.WithCancel(ws.ctx)
	wt := &watch{id: id, cancel: cancel, done: make(chan struct{}), sentRev: rev, createRev: rev}
	if c.StartRevision > 0 && c.StartRevision <= rev {
		wt.sentRev, wt.replaying = c.StartRevision-1, true
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			wt.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			wt.noDel = true
		}
	}
	ws.watches[id] = wt
	ws.mu.Unlock()

	// Created goes out before any event of the watch: the watch starts
	// sending only after this.
	if err := ws.send(&pb.WatchResponse{Header: header(rev), WatchId: id, Created: true}); err != nil {
		cancel()
		close(wt.done)
		ws.srv.dropWatch(remote)
		return err
	}

	key, end := c.Key, c.RangeEnd
	if len(end) == 0 {
		end = nil
	}
	// "From now" is from the revision after the one the created answer
	// names, so that a write landing meanwhile is not missed.
	start := c.StartRevision
	if start == 0 {
		start = rev + 1
	}
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		defer close(wt.done)
		defer ws.srv.dropWatch(remote)
		opts := kv.WatchOptions{PrevKV: c.PrevKv, Compaction: ws.srv.store.HonoursCompaction()}
		err := ws.srv.store.WatchWith(wctx, key, end, start, opts, func(rev int64, evs []kv.Event) error {
			return ws.deliver(wt, rev, evs)
		})
		if wctx.Err() != nil {
			return // canceled by the client or the stream ended
		}
		// The engine refused or ended the watch: tell the client why.
		ws.mu.Lock()
		delete(ws.watches, id)
		ws.mu.Unlock()
		cancel()
		var compacted *kv.CompactedError
		if errors.As(err, &compacted) {
			// As etcd's watchableStore: the revisions the watch needs are
			// compacted; the client re-lists from the compact revision.
			// etcd's answer carries revision 0 and no reason.
			ws.send(&pb.WatchResponse{Header: header(0), WatchId: id, Canceled: true, CompactRevision: compacted.Rev})
			return
		}
		// The engine's watch only ever returns an error.
		reason := toGRPC(err).Error()
		if st, ok := status.FromError(toGRPC(err)); ok {
			reason = st.Message()
		}
		ws.send(&pb.WatchResponse{Header: header(ws.srv.store.Rev()), WatchId: id, Canceled: true, CancelReason: reason})
	}()
	if c.ProgressNotify {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			ws.progressLoop(wctx, wt)
		}()
	}
	return nil
}

// deliver sends one revision's events of a watch as one WatchResponse.
func (ws *watchStream) deliver(wt *watch, rev int64, evs []kv.Event) error {
	out := make([]*mvccpb.Event, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		if (e.Type == kv.Put && wt.noPut) || (e.Type == kv.Delete && wt.noDel) {
			continue
		}
		me := &mvccpb.Event{Kv: toKV(&e.KV), PrevKv: toKVPtr(e.PrevKV)}
		if e.Type == kv.Delete {
			me.Type = mvccpb.DELETE
		}
		out = append(out, me)
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if rev > wt.sentRev {
		wt.sentRev = rev
	}
	if rev >= wt.createRev {
		wt.replaying = false
	}
	if len(out) == 0 {
		return nil
	}
	wt.quiet = false
	return ws.send(&pb.WatchResponse{Header: header(rev), WatchId: wt.id, Events: out})
}

// progressLoop sends a watch's periodic progress notification when nothing
// was sent to it for a whole interval, as etcd does.
func (ws *watchStream) progressLoop(ctx context.Context, wt *watch) {
	t := time.NewTicker(ws.srv.progress)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := ws.progress(wt, wt.id, true); err != nil {
			return
		}
	}
}

// progress tells a watch it has seen everything up to the current revision
// (up to its last delivery while it replays history). Holding the watch's
// lock keeps it from interleaving with a delivery.
func (ws *watchStream) progress(wt *watch, id int64, onlyIfQuiet bool) error {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	quiet := wt.quiet
	wt.quiet = true
	if onlyIfQuiet && !quiet {
		return nil
	}
	rev := wt.safeRev(ws.srv.store.Rev())
	if rev <= 0 {
		return nil // a zero revision would not read as progress
	}
	return ws.send(&pb.WatchResponse{Header: header(rev), WatchId: id})
}

// progressAll answers a WatchProgressRequest: one notification, for no
// watch in particular (clients hand it to every watch of the stream), at the
// current revision.
func (ws *watchStream) progressAll() error {
	ws.mu.Lock()
	all := make([]*watch, 0, len(ws.watches))
	for _, wt := range ws.watches {
		all = append(all, wt)
	}
	ws.mu.Unlock()
	// Lock every watch so that none is between reading and sending a
	// revision while the notification goes out.
	for _, wt := range all {
		wt.mu.Lock()
	}
	defer func() {
		for _, wt := range all {
			wt.mu.Unlock()
		}
	}()
	current := ws.srv.store.Rev()
	rev := current
	for _, wt := range all {
		rev = min(rev, wt.safeRev(current))
	}
	return ws.send(&pb.WatchResponse{Header: header(rev), WatchId: invalidWatchID})
}

// cancelWatch stops a watch and answers canceled once its last event has
// gone out, so that nothing of it follows the cancel.
func (ws *watchStream) cancelWatch(id int64) error {
	ws.mu.Lock()
	wt, ok := ws.watches[id]
	delete(ws.watches, id)
	ws.mu.Unlock()
	if !ok {
		// etcd answers an unknown id with a canceled response too.
		return ws.send(&pb.WatchResponse{Header: header(ws.srv.store.Rev()), WatchId: id, Canceled: true})
	}
	wt.cancel()
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		<-wt.done
		ws.send(&pb.WatchResponse{Header: header(ws.srv.store.Rev()), WatchId: id, Canceled: true})
	}()
	return nil
}
