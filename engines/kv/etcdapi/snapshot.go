package etcdapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cairnhq/cairn/engines/kv"
)

// Snapshot streams a real etcd snapshot of the KV state and its whole
// history: a bbolt database in etcd's mvcc layout, then the SHA-256 of
// it, as etcd's Maintenance.Snapshot sends it, so that `etcdctl snapshot
// restore` (or etcdutl's) accepts it and a real etcd started on the
// restored directory serves the same keys, revisions and leases. It is
// the way out of cairn to etcd with one's data (docs/kv.md).
//
// Layout (etcd's server/storage/schema): bucket "key" maps a revision
// (8-byte big-endian main revision, '_', 8-byte sub revision, and 't' for
// a deletion) to a mvccpb.KeyValue; "meta" holds consistent_index;
// "lease" maps an 8-byte lease id to a leasepb.Lease; "auth",
// "authUsers" and "authRoles" hold etcd's auth state (whether it is on,
// its revision, authpb users with their bcrypt hashes, authpb roles with
// their key ranges), so the restored etcd has the same users; the
// membership and alarm buckets are there, empty, as in a fresh member. Every
// revision cairn holds is in it: cairn never drops history, so the
// snapshot has none compacted (a Compact is only recorded).
func (m *maintenanceService) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	ctx := stream.Context()
	f, err := os.CreateTemp(m.tmpDir, "etcd-snapshot-*.db")
	if err != nil {
		return toGRPC(fmt.Errorf("snapshot: %w", err))
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	var auth *authState
	if m.auth != nil {
		auth = m.auth.state()
	}
	if err := writeSnapshot(ctx, m.store, auth, path); err != nil {
		return toGRPC(fmt.Errorf("snapshot: %w", err))
	}
	db, err := os.Open(path)
	if err != nil {
		return toGRPC(err)
	}
	defer db.Close()
	fi, err := db.Stat()
	if err != nil {
		return toGRPC(err)
	}
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for total := int64(0); total < fi.Size(); {
		n, err := io.ReadFull(db, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return toGRPC(err)
		}
		total += int64(n)
		h.Write(buf[:n])
		if err := stream.Send(&pb.SnapshotResponse{Header: header(m.store.Rev()), RemainingBytes: uint64(fi.Size() - total), Blob: buf[:n]}); err != nil {
			return err
		}
	}
	return stream.Send(&pb.SnapshotResponse{Header: header(m.store.Rev()), Blob: h.Sum(nil)})
}

// Buckets of etcd's backend (server/storage/schema/bucket.go).
var (
	bucketKey       = []byte("key")
	bucketMeta      = []byte("meta")
	bucketLease     = []byte("lease")
	emptyBucket     = [][]byte{[]byte("members"), []byte("members_removed"), []byte("cluster"), []byte("alarm")}
	bucketAuth      = []byte("auth")
	bucketAuthUsers = []byte("authUsers")
	bucketAuthRoles = []byte("authRoles")
)

// writeSnapshot builds the bbolt database of the snapshot at path.
func writeSnapshot(ctx context.Context, s *kv.Store, auth *authState, path string) error {
	rev := s.Rev()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		keys, err := tx.CreateBucket(bucketKey)
		if err != nil {
			return err
		}
		for _, name := range emptyBucket {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := writeAuth(tx, auth); err != nil {
			return err
		}
		if err := writeHistory(ctx, s, rev, keys); err != nil {
			return err
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		ci := make([]byte, 8)
		binary.BigEndian.PutUint64(ci, uint64(rev))
		if err := meta.Put([]byte("consistent_index"), ci); err != nil {
			return err
		}
		leases, err := tx.CreateBucket(bucketLease)
		if err != nil {
			return err
		}
		ls, err := s.Leases(ctx)
		if err != nil {
			return err
		}
		for _, l := range ls {
			id := make([]byte, 8)
			binary.BigEndian.PutUint64(id, uint64(l.ID))
			if err := leases.Put(id, leaseProto(l)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeHistory puts every revision up to rev into the key bucket, replaying
// the journal through a watch of the whole key space from revision 1.
func writeHistory(ctx context.Context, s *kv.Store, rev int64, keys *bolt.Bucket) error {
	if rev <= 1 {
		return nil // no key was ever written
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := errors.New("caught up")
	err := s.WatchWith(wctx, []byte{0}, []byte{0}, 1, kv.WatchOptions{}, func(at int64, evs []kv.Event) error {
		for sub, e := range evs {
			k := revKey(at, int64(sub), e.Type == kv.Delete)
			kvp := &mvccpb.KeyValue{Key: e.KV.Key}
			if e.Type != kv.Delete {
				kvp = toKV(&e.KV)
			}
			v, err := kvp.Marshal()
			if err != nil {
				return err
			}
			if err := keys.Put(k, v); err != nil {
				return err
			}
		}
		if at >= rev {
			return done
		}
		return nil
	})
	if errors.Is(err, done) {
		return nil
	}
	return err
}

// revKey is etcd's key of a revision in the key bucket.
func revKey(main, sub int64, tombstone bool) []byte {
	k := make([]byte, 17, 18)
	binary.BigEndian.PutUint64(k, uint64(main))
	k[8] = '_'
	binary.BigEndian.PutUint64(k[9:], uint64(sub))
	if tombstone {
		k = append(k, 't')
	}
	return k
}

// leaseProto encodes etcd's leasepb.Lease {ID = 1, TTL = 2, RemainingTTL =
// 3} by hand: the type lives in etcd's server module, which cairn does
// not otherwise need.
func leaseProto(l kv.Lease) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(l.ID))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(l.GrantedTTL))
	if l.TTL > 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(l.TTL))
	}
	return b
}

// writeAuth writes etcd's auth buckets (server/auth/store.go): in "auth",
// authEnabled (1 or 0) and authRevision (8 bytes, big-endian); a user
// per key of "authUsers", a role per key of "authRoles", as authpb
// marshals them. A nil state (no auth engine) writes the buckets empty.
func writeAuth(tx *bolt.Tx, st *authState) error {
	b, err := tx.CreateBucket(bucketAuth)
	if err != nil {
		return err
	}
	users, err := tx.CreateBucket(bucketAuthUsers)
	if err != nil {
		return err
	}
	roles, err := tx.CreateBucket(bucketAuthRoles)
	if err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	enabled := []byte{0}
	if st.Enabled {
		enabled = []byte{1}
	}
	if err := b.Put([]byte("authEnabled"), enabled); err != nil {
		return err
	}
	if err := b.Put([]byte("authRevision"), binary.BigEndian.AppendUint64(nil, uint64(st.Rev))); err != nil {
		return err
	}
	for name, u := range st.Users {
		pu := &authpb.User{Name: []byte(name), Password: []byte(u.Hash), Roles: slices.Sorted(slices.Values(u.Roles))}
		if u.Hash == "" {
			pu.Options = &authpb.UserAddOptions{NoPassword: true}
		}
		v, err := pu.Marshal()
		if err != nil {
			return err
		}
		if err := users.Put([]byte(name), v); err != nil {
			return err
		}
	}
	for name, r := range st.Roles {
		pr := &authpb.Role{Name: []byte(name)}
		for _, p := range r.Perms {
			pr.KeyPermission = append(pr.KeyPermission, &authpb.Permission{PermType: authpb.Permission_Type(p.Type), Key: p.Key, RangeEnd: p.End})
		}
		v, err := pr.Marshal()
		if err != nil {
			return err
		}
		if err := roles.Put([]byte(name), v); err != nil {
			return err
		}
	}
	return nil
}
