package kv

import (
	"context"

	"github.com/cairnhq/cairn/journal"
)

// Service is the Store as other modules look it up as "kv": single-key
// puts, gets and deletes. Its consumers declare the interface they need
// (the infra kv provider's Store); the etcd API takes the whole *Store as
// "kv.store".
type Service struct{ s *Store }

// NewService returns s as the "kv" service.
func NewService(s *Store) Service { return Service{s} }

func (v Service) Put(ctx context.Context, actor journal.Actor, key, value []byte) (int64, error) {
	r, err := v.s.Put(ctx, actor, PutRequest{Key: key, Value: value})
	return r.Rev, err
}

func (v Service) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	r, err := v.s.Range(ctx, RangeRequest{Key: key})
	if err != nil || len(r.KVs) == 0 {
		return nil, false, err
	}
	return r.KVs[0].Value, true, nil
}

func (v Service) Delete(ctx context.Context, actor journal.Actor, key []byte) (bool, error) {
	r, err := v.s.Delete(ctx, actor, DeleteRequest{Key: key})
	return r.Deleted > 0, err
}
