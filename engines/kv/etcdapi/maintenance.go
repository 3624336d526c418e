package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// maintenanceService serves Maintenance.Status; the rest of Maintenance
// (defragment, snapshot, alarms, hashes, move-leader, downgrade) has no
// meaning for cairn and answers Unimplemented.
type maintenanceService struct {
	pb.UnimplementedMaintenanceServer
	*server
}

// Status describes this endpoint as a one-member etcd cluster whose leader
// it is, so that `etcdctl endpoint status` works.
func (m *maintenanceService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	rev, size := m.store.Rev(), m.store.DBSize()
	return &pb.StatusResponse{
		Header:           header(rev),
		Version:          serverVersion,
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           memberID,
		RaftIndex:        uint64(rev),
		RaftTerm:         raftTerm,
		RaftAppliedIndex: uint64(rev),
	}, nil
}

// clusterService answers MemberList with this daemon alone; membership
// changes answer Unimplemented.
type clusterService struct {
	pb.UnimplementedClusterServer
	*server
}

// MemberList lists the one member: this endpoint.
func (c *clusterService) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{
		Header:  header(c.store.Rev()),
		Members: []*pb.Member{{ID: memberID, Name: "cairn", ClientURLs: []string{"http://" + c.addr}}},
	}, nil
}
