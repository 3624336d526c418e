package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// StoreOptions configure the store: where the TSDB lives and how long it
// keeps samples, and the query engine's limits.
type StoreOptions struct {
	Dir            string
	Retention      time.Duration // 0: Prometheus's default, 15 days
	RetentionBytes int64         // 0: no bound
	MaxSamples     int           // query.max-samples; 0: Prometheus's default, 50,000,000
	QueryTimeout   time.Duration // query.timeout; 0: 2 minutes
	LookbackDelta  time.Duration // query.lookback-delta; 0: 5 minutes
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// Store is Prometheus's own TSDB and PromQL engine, embedded: samples are
// appended to the TSDB (its WAL makes them survive a crash) and queries
// run on Prometheus's query engine, with its limits.
type Store struct {
	DB     *tsdb.DB
	Engine *promql.Engine
	Parser parser.Parser
	opts   StoreOptions
}

// OpenStore opens (or creates) the TSDB in opts.Dir, replaying its WAL.
func OpenStore(opts StoreOptions) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxSamples == 0 {
		opts.MaxSamples = 50_000_000
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = 2 * time.Minute
	}
	if opts.LookbackDelta == 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	to := tsdb.DefaultOptions()
	if opts.Retention > 0 {
		to.RetentionDuration = opts.Retention.Milliseconds()
	}
	to.MaxBytes = opts.RetentionBytes
	db, err := tsdb.Open(opts.Dir, opts.Logger.With("component", "tsdb"), opts.Registerer, to, nil)
	if err != nil {
		return nil, fmt.Errorf("open metrics TSDB %s: %w", opts.Dir, err)
	}
	p := parser.NewParser(parser.Options{})
	eng := promql.NewEngine(promql.EngineOpts{
		Logger:               opts.Logger.With("component", "promql"),
		Reg:                  opts.Registerer,
		MaxSamples:           opts.MaxSamples,
		Timeout:              opts.QueryTimeout,
		LookbackDelta:        opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               p,
	})
	return &Store{DB: db, Engine: eng, Parser: p, opts: opts}, nil
}

// Close closes the TSDB, flushing its head.
func (s *Store) Close() error { return s.DB.Close() }

// Instant evaluates expr at t.
func (s *Store) Instant(ctx context.Context, expr string, t time.Time) (parser.Value, error) {
	q, err := s.Engine.NewInstantQuery(ctx, s.DB, nil, expr, t)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, queryError(res.Err, s.opts.MaxSamples)
	}
	return res.Value, nil
}

// Range evaluates expr from start to end every step.
func (s *Store) Range(ctx context.Context, expr string, start, end time.Time, step time.Duration) (promql.Matrix, error) {
	q, err := s.Engine.NewRangeQuery(ctx, s.DB, nil, expr, start, end, step)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, queryError(res.Err, s.opts.MaxSamples)
	}
	m, err := res.Matrix()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ErrTooManySamples is a query refused by query.max-samples.
type ErrTooManySamples struct{ Limit int }

func (e *ErrTooManySamples) Error() string {
	return fmt.Sprintf("query would load more than %d samples into memory (query.max-samples, the daemon's --query-max-samples): narrow the selector or the range", e.Limit)
}

// queryError names the limit of a query refused for its size.
func queryError(err error, limit int) error {
	var tooMany promql.ErrTooManySamples
	if errors.As(err, &tooMany) {
		return &ErrTooManySamples{Limit: limit}
	}
	return err
}

// namedLimitEngine is the query engine as the HTTP API uses it: a query
// refused by query.max-samples says so and names the limit (Prometheus's
// own message names neither).
type namedLimitEngine struct {
	*promql.Engine
	limit int
}

func (e namedLimitEngine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	qry, err := e.Engine.NewInstantQuery(ctx, q, opts, qs, ts)
	if err != nil {
		return nil, err
	}
	return namedLimitQuery{qry, e.limit}, nil
}

func (e namedLimitEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	qry, err := e.Engine.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	return namedLimitQuery{qry, e.limit}, nil
}

type namedLimitQuery struct {
	promql.Query
	limit int
}

func (q namedLimitQuery) Exec(ctx context.Context) *promql.Result {
	res := q.Query.Exec(ctx)
	if res.Err != nil {
		res.Err = queryError(res.Err, q.limit)
	}
	return res
}
