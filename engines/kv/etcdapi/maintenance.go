package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/journal"
)

// maintenanceService serves Maintenance: Status, the alarms (the audit
// stream's free-space reserve is etcd's NOSPACE), HashKV and Hash, and
// Defragment as a compaction of the audit stream. Snapshot, MoveLeader and
// Downgrade answer Unimplemented.
type maintenanceService struct {
	pb.UnimplementedMaintenanceServer
	*server
}

// alarmSet is this member's armed alarms. etcd keeps them in its backend;
// cairn keeps them in memory (an armed alarm lasts until disarmed or the
// daemon restarts), and re-arms NOSPACE whenever it finds the free space
// below the reserve, so a restart cannot hide it.
type alarmSet struct {
	mu    sync.Mutex
	armed map[pb.AlarmType]bool
}

func (a *alarmSet) arm(t pb.AlarmType) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.armed == nil {
		a.armed = map[pb.AlarmType]bool{}
	}
	a.armed[t] = true
}

// disarm reports whether t was armed.
func (a *alarmSet) disarm(t pb.AlarmType) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.armed[t]
	delete(a.armed, t)
	return was
}

func (a *alarmSet) has(t pb.AlarmType) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.armed[t]
}

// list returns the armed alarms of type t (NONE: all) in type order.
func (a *alarmSet) list(t pb.AlarmType) []*pb.AlarmMember {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*pb.AlarmMember
	for at := range a.armed {
		if t == pb.AlarmType_NONE || t == at {
			out = append(out, &pb.AlarmMember{MemberID: memberID, Alarm: at})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alarm < out[j].Alarm })
	return out
}

// checkSpace arms NOSPACE when an append would fail now for the reserve.
func (s *server) checkSpace() {
	if err := s.store.SpaceShort(); err != nil {
		s.alarms.arm(pb.AlarmType_NOSPACE)
	}
}

// writeErr is toGRPC for the answer of a write: a write refused for the
// free-space reserve arms NOSPACE, as etcd's quota check does.
func (s *server) writeErr(err error) error {
	if errors.Is(err, journal.ErrResourceExhausted) {
		s.alarms.arm(pb.AlarmType_NOSPACE)
	}
	return toGRPC(err)
}

// refuseWrite is the armed alarms' answer to a write, as etcd's capped
// and corrupt appliers give it: NOSPACE refuses what adds data (a put, a
// txn with a put, a lease grant), CORRUPT refuses every write.
func (s *server) refuseWrite(adds bool) error {
	if s.alarms.has(pb.AlarmType_CORRUPT) {
		return rpctypes.ErrGRPCCorrupt
	}
	if adds && s.alarms.has(pb.AlarmType_NOSPACE) {
		return rpctypes.ErrGRPCNoSpace
	}
	return nil
}

// alarmStrings are the armed alarms as etcd's Status lists them in errors.
func (s *server) alarmStrings() []string {
	var out []string
	for _, m := range s.alarms.list(pb.AlarmType_NONE) {
		out = append(out, fmt.Sprintf("memberID:%d alarm:%s", m.MemberID, m.Alarm))
	}
	return out
}

// Alarm lists (GET), arms (ACTIVATE) or disarms (DEACTIVATE) an alarm of
// this member, as etcd's: `etcdctl alarm list` and `alarm disarm`, and
// `endpoint health`, which reports an endpoint with an alarm unhealthy.
func (m *maintenanceService) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if _, ok := pb.AlarmType_name[int32(r.Alarm)]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: unknown alarm type %d", r.Alarm)
	}
	m.checkSpace()
	resp := &pb.AlarmResponse{}
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = m.alarms.list(r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm != pb.AlarmType_NONE && r.MemberID == memberID {
			m.alarms.arm(r.Alarm)
			resp.Alarms = []*pb.AlarmMember{{MemberID: memberID, Alarm: r.Alarm}}
		}
	case pb.AlarmRequest_DEACTIVATE:
		if r.MemberID == memberID && m.alarms.disarm(r.Alarm) {
			resp.Alarms = []*pb.AlarmMember{{MemberID: memberID, Alarm: r.Alarm}}
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: unknown alarm action %d", r.Action)
	}
	resp.Header = header(m.store.Rev())
	return resp, nil
}

// Status describes this endpoint as a one-member etcd cluster whose leader
// it is, so that `etcdctl endpoint status` works: the version of the etcd
// API served, the audit stream's size on disk, the KV revision as the raft
// index, the armed alarms as errors.
func (m *maintenanceService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	m.checkSpace()
	rev, size := m.store.Rev(), m.store.DBSize()
	return &pb.StatusResponse{
		Header:           header(rev),
		Version:          serverVersion,
		StorageVersion:   version.APIVersion + ".0",
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           memberID,
		RaftIndex:        uint64(rev),
		RaftTerm:         raftTerm,
		RaftAppliedIndex: uint64(rev),
		Errors:           m.alarmStrings(),
	}, nil
}

// HashKV hashes the KV state at a revision (0: the current one); see
// kv.Store.HashKV. The compact revision is the latest kv.compact's (-1:
// none, as etcd reports it); below it the answer is ErrCompacted when the
// API honours compaction, as etcd's.
func (m *maintenanceService) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	if err := m.checkCompacted(r.Revision); err != nil {
		return nil, err
	}
	h, rev, err := m.store.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashKVResponse{Header: header(m.store.Rev()), Hash: h, CompactRevision: m.store.CompactRev(), HashRevision: rev}, nil
}

// Hash is etcd's hash of the whole backend, for its tests; cairn answers
// HashKV of the current state.
func (m *maintenanceService) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, err := m.store.HashKV(ctx, 0)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashResponse{Header: header(rev), Hash: h}, nil
}

// Defragment compacts the audit stream's pebble store, as etcd's rewrites
// its bbolt file; reads and writes go on meanwhile.
func (m *maintenanceService) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := m.store.Defragment(ctx); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.DefragmentResponse{Header: header(m.store.Rev())}, nil
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
