package etcdapi

import (
	"context"
	"errors"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/engines/kv"
)

// leaseService is etcd's Lease service on the KV engine's leases.
type leaseService struct {
	pb.UnimplementedLeaseServer
	*server
}

// LeaseGrant grants a lease; ID 0 lets the engine pick one. A TTL under
// kv.MinLeaseTTL (2 s), 0 included, gets kv.MinLeaseTTL, as etcd's minimum
// lease TTL. The header carries the KV revision, which a grant leaves.
func (l *leaseService) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := l.refuseWrite(true); err != nil {
		return nil, err
	}
	le, err := l.store.LeaseGrant(ctx, l.callerOf(ctx), r.ID, r.TTL)
	if err != nil {
		return nil, l.writeErr(err)
	}
	return &pb.LeaseGrantResponse{Header: header(l.store.Rev()), ID: le.ID, TTL: le.TTL}, nil
}

// LeaseRevoke revokes a lease and deletes its keys, as one revision.
func (l *leaseService) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := l.refuseWrite(false); err != nil {
		return nil, err
	}
	if err := l.checkRevoke(ctx, r.ID); err != nil {
		return nil, err
	}
	rev, err := l.store.LeaseRevokeKV(ctx, l.callerOf(ctx), r.ID)
	if err != nil {
		return nil, l.writeErr(err)
	}
	return &pb.LeaseRevokeResponse{Header: header(rev)}, nil
}

// LeaseKeepAlive renews leases for as long as the client streams requests.
// An unknown or expired lease answers TTL 0, not an error, as etcd does
// (clients turn that into "requested lease not found").
func (l *leaseService) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	who := l.callerOf(ctx)

	// Recv does not watch ctx: read in a goroutine so that the server's
	// stop ends the stream.
	reqs := make(chan *pb.LeaseKeepAliveRequest)
	go func() {
		defer close(reqs)
		for {
			req, err := stream.Recv()
			if err != nil {
				return // the client closed its side or went away
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var req *pb.LeaseKeepAliveRequest
		select {
		case <-ctx.Done():
			if l.ctx.Err() != nil {
				return status.Error(codes.Unavailable, "etcdserver: cairn's etcd API is stopping")
			}
			return ctx.Err()
		case r, ok := <-reqs:
			if !ok {
				return nil
			}
			req = r
		}
		le, err := l.store.LeaseKeepAlive(ctx, who, req.ID)
		switch {
		case errors.Is(err, kv.ErrLeaseNotFound):
			le = kv.Lease{ID: req.ID, TTL: 0}
		case err != nil:
			return l.writeErr(err)
		}
		if err := stream.Send(&pb.LeaseKeepAliveResponse{Header: header(l.store.Rev()), ID: req.ID, TTL: le.TTL}); err != nil {
			return err
		}
	}
}

// LeaseTimeToLive reports a lease's remaining and granted TTL, and its keys
// when asked. An unknown lease answers TTL -1, as etcd does.
func (l *leaseService) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	le, err := l.store.LeaseTimeToLive(ctx, r.ID, r.Keys)
	switch {
	case errors.Is(err, kv.ErrLeaseNotFound):
		return &pb.LeaseTimeToLiveResponse{Header: header(l.store.Rev()), ID: r.ID, TTL: -1}, nil
	case err != nil:
		return nil, toGRPC(err)
	}
	return &pb.LeaseTimeToLiveResponse{Header: header(l.store.Rev()), ID: le.ID, TTL: le.TTL, GrantedTTL: le.GrantedTTL, Keys: le.Keys}, nil
}

// LeaseLeases lists the live leases.
func (l *leaseService) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	ls, err := l.store.Leases(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &pb.LeaseLeasesResponse{Header: header(l.store.Rev())}
	for _, le := range ls {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: le.ID})
	}
	return resp, nil
}

// checkRevoke is etcd's rule for revoking a lease with auth on: it deletes
// the lease's keys, so a user other than root needs write permission on
// every one of them.
func (l *leaseService) checkRevoke(ctx context.Context, id int64) error {
	user := etcdUserOf(ctx)
	if l.auth == nil || user == "" {
		return nil
	}
	st := l.auth.state()
	if !st.Enabled || st.Users[user] != nil && slices.Contains(st.Users[user].Roles, rootName) {
		return nil
	}
	le, err := l.store.LeaseTimeToLive(ctx, id, true)
	if err != nil {
		return nil // the revoke itself answers an unknown lease
	}
	for _, k := range le.Keys {
		if !st.allowed(user, permWrite, k, nil) {
			return rpctypes.ErrGRPCPermissionDenied
		}
	}
	return nil
}
