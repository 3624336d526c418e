package kv

import (
	"context"

	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// service is the Store as the engines.KV other modules look up as "kv".
type service struct{ s *Store }

var _ engines.KV = service{}

func (v service) Put(ctx context.Context, actor journal.Actor, key, value []byte) (int64, error) {
	r, err := v.s.Put(ctx, actor, PutRequest{Key: key, Value: value})
	return r.Rev, err
}

func (v service) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	r, err := v.s.Range(ctx, RangeRequest{Key: key})
	if err != nil || len(r.KVs) == 0 {
		return nil, false, err
	}
	return r.KVs[0].Value, true, nil
}

func (v service) Delete(ctx context.Context, actor journal.Actor, key []byte) (bool, error) {
	r, err := v.s.Delete(ctx, actor, DeleteRequest{Key: key})
	return r.Deleted > 0, err
}
