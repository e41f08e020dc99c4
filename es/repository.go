package es

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
)

// Repository loads and saves aggregates of type T from an event store. It
// is safe for concurrent use; the aggregates it returns are not.
type Repository[T Aggregate] struct {
	store   event.Store
	reg     *event.Registry
	cfg     RepositoryConfig[T]
	log     *slog.Logger
	tracer  trace.Tracer
	metrics repoMetrics
}

// NewRepository returns a repository for aggregates of type T stored in
// store, with payloads encoded and decoded by reg. Every problem of cfg is
// reported at once, in an error satisfying errors.Is(err, ErrInvalidConfig).
func NewRepository[T Aggregate](store event.Store, reg *event.Registry, cfg RepositoryConfig[T]) (*Repository[T], error) {
	var errs []error
	if isNil(store) {
		errs = append(errs, errors.New("store: required"))
	}
	if reg == nil {
		errs = append(errs, errors.New("registry: required"))
	}
	errs = append(errs, cfg.problems()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("es: new repository for %q: %w:\n%w", cfg.StreamType, ErrInvalidConfig, errors.Join(errs...))
	}
	cfg = cfg.withDefaults()
	return &Repository[T]{
		store:   store,
		reg:     reg,
		cfg:     cfg,
		log:     cfg.Logger.With("stream_type", cfg.StreamType),
		tracer:  cfg.TracerProvider.Tracer(scopeName),
		metrics: newRepoMetrics(cfg.MeterProvider, cfg.StreamType),
	}, nil
}

// Stream returns the stream ID of the aggregate with ID id:
// StreamType + "-" + id.
func (r *Repository[T]) Stream(id string) string { return r.cfg.StreamType + "-" + id }

// Load returns the current state of aggregate id. It starts from the
// stream's snapshot when a usable one exists and replays the events after
// it; a snapshot of another SnapshotVersion, or one that cannot be decoded,
// is logged and ignored. A stream without events is an error satisfying
// errors.Is(err, event.ErrStreamNotFound); an event the registry cannot
// decode is an *event.DecodeError (use errors.As).
//
// When the snapshot policy says the replayed version is due, Load takes a
// snapshot; a failure to store it is logged, never returned.
func (r *Repository[T]) Load(ctx context.Context, id string) (T, error) {
	ctx, span := r.startSpan(ctx, "es.Load", id)
	defer span.End()
	agg, err := r.load(ctx, id, 0, true)
	return agg, endSpan(span, err)
}

// LoadAt returns aggregate id as it was at version: after its first version
// events. A snapshot is used only if it is not newer than version. A
// version the stream has not reached is an error satisfying
// errors.Is(err, ErrVersionNotFound).
func (r *Repository[T]) LoadAt(ctx context.Context, id string, version int64) (T, error) {
	ctx, span := r.startSpan(ctx, "es.LoadAt", id)
	defer span.End()
	if version < 1 {
		var zero T
		return zero, endSpan(span, &event.ValidationError{Field: "version", Value: strconv.FormatInt(version, 10), Reason: "versions start at 1"})
	}
	agg, err := r.load(ctx, id, version, false)
	return agg, endSpan(span, err)
}

// load replays aggregate id up to version at, or to the end when at is 0.
// With snapshot set it takes a snapshot when one is due; UpdateTx loads
// without, since writing one on another connection would wait for the
// caller's transaction (SQLite's single write lock).
func (r *Repository[T]) load(ctx context.Context, id string, at int64, snapshot bool) (T, error) {
	var zero T
	if id == "" {
		return zero, &event.ValidationError{Field: "id", Value: "", Reason: "aggregate ID must not be empty"}
	}
	stream := r.Stream(id)
	agg, ok := r.fromSnapshot(ctx, stream, at)
	if !ok {
		var err error
		if agg, err = r.newAggregate(); err != nil {
			return zero, err
		}
	}
	root := agg.Root()
	root.id = id
	for e, err := range r.store.Load(ctx, stream, root.version+1) {
		if err != nil {
			if errors.Is(err, event.ErrStreamNotFound) {
				return zero, driver.StreamNotFoundError(stream)
			}
			return zero, fmt.Errorf("load %s after version %d: %w", stream, root.version, err)
		}
		if at > 0 && e.Version > at {
			break
		}
		if e.Version != root.version+1 {
			return zero, fmt.Errorf("load %s: store returned event %s at version %d after version %d", stream, e.ID, e.Version, root.version)
		}
		data, err := r.reg.Decode(e)
		if err != nil {
			return zero, fmt.Errorf("load %s: %w", stream, err)
		}
		if err := agg.Apply(data); err != nil {
			return zero, fmt.Errorf("load %s: apply event %s (%s) at version %d: %w", stream, e.ID, e.Type, e.Version, err)
		}
		root.version = e.Version
	}
	switch {
	case root.version == 0:
		return zero, driver.StreamNotFoundError(stream)
	case at > 0 && root.version < at:
		return zero, fmt.Errorf("load %s at version %d: stream is at version %d: %w", stream, at, root.version, ErrVersionNotFound)
	case at == 0 && snapshot:
		r.maybeSnapshot(ctx, nil, stream, agg)
	}
	return agg, nil
}

// fromSnapshot returns a new aggregate restored from the stream's snapshot,
// and false when there is no usable snapshot. It never fails: anything
// wrong with the snapshot means a full replay.
func (r *Repository[T]) fromSnapshot(ctx context.Context, stream string, at int64) (T, bool) {
	var zero T
	if r.cfg.Snapshots == nil {
		return zero, false
	}
	s, ok, err := r.cfg.Snapshots.LoadSnapshot(ctx, stream)
	switch {
	case err != nil:
		r.log.WarnContext(ctx, "es: cannot load snapshot; replaying the stream", "stream", stream, "error", err)
		return zero, false
	case !ok, at > 0 && s.Version > at:
		return zero, false
	case s.SchemaVersion != r.cfg.SnapshotVersion:
		r.log.WarnContext(ctx, "es: ignoring snapshot of another schema version; replaying the stream",
			"stream", stream, "snapshot_version", s.Version,
			"snapshot_schema_version", s.SchemaVersion, "want_schema_version", r.cfg.SnapshotVersion)
		return zero, false
	case s.StreamID != stream || s.Version < 1:
		r.log.WarnContext(ctx, "es: ignoring invalid snapshot; replaying the stream",
			"stream", stream, "snapshot_stream", s.StreamID, "snapshot_version", s.Version)
		return zero, false
	}
	agg, err := r.newAggregate()
	if err != nil {
		return zero, false
	}
	if err := decodeSnapshot(agg, s.Data); err != nil {
		r.log.WarnContext(ctx, "es: ignoring snapshot that cannot be decoded; replaying the stream",
			"stream", stream, "snapshot_version", s.Version, "error", err)
		return zero, false
	}
	root := agg.Root()
	if len(root.pending) > 0 {
		r.log.WarnContext(ctx, "es: ignoring snapshot: decoding it raised events; replaying the stream", "stream", stream)
		return zero, false
	}
	root.version = s.Version
	root.snapshotVersion = s.Version
	return agg, true
}

// maybeSnapshot takes a snapshot of agg, which has no uncommitted events,
// when the policy says so: inside tx when tx is not nil (see
// SnapshotTxStore), else on its own. Failures are logged: the events are
// stored, and the snapshot is only a shortcut.
func (r *Repository[T]) maybeSnapshot(ctx context.Context, tx *sql.Tx, stream string, agg T) {
	root := agg.Root()
	if r.cfg.Snapshots == nil || root.stale || !r.cfg.SnapshotPolicy.ShouldSnapshot(root.snapshotVersion, root.version) {
		return
	}
	var txSnaps SnapshotTxStore
	if tx != nil {
		ss, ok := r.cfg.Snapshots.(SnapshotTxStore)
		ts, _ := r.store.(event.TxStore)
		if !ok || ts == nil || ss.DB() != ts.DB() {
			return // the next Save or Load takes it
		}
		txSnaps = ss
	}
	data, err := encodeSnapshot(agg)
	if err != nil {
		r.log.WarnContext(ctx, "es: cannot encode snapshot", "stream", stream, "version", root.version, "error", err)
		return
	}
	snap := Snapshot{
		StreamID:      stream,
		Version:       root.version,
		SchemaVersion: r.cfg.SnapshotVersion,
		Data:          data,
		CreatedAt:     time.Now().UTC(),
	}
	if txSnaps != nil {
		err = txSnaps.SaveSnapshotTx(ctx, tx, snap)
	} else {
		err = r.cfg.Snapshots.SaveSnapshot(ctx, snap)
	}
	if err != nil {
		r.log.WarnContext(ctx, "es: cannot save snapshot", "stream", stream, "version", root.version, "error", err)
		return
	}
	root.snapshotVersion = root.version
}

// Save appends agg's uncommitted events to its stream, expecting the stream
// to be at the version agg was loaded at (event.NoStream for a new
// aggregate), then clears them and advances agg's version. A stale
// aggregate gets an error satisfying errors.Is(err,
// event.ErrConcurrencyConflict) and keeps its uncommitted events. Saving an
// aggregate without uncommitted events does nothing.
//
// Every event carries the metadata of ctx (see WithMetadata). After the
// append, Save takes a snapshot when the policy says so; a snapshot failure
// is logged, not returned, because the events are committed.
//
// When the store skips agg's events as already stored (a retried command
// that raised events with WithEventID), Save succeeds, but agg applied
// them on top of a state that may include them already: its state is not
// the stream's. agg is marked, a later Save of it fails with an error
// satisfying errors.Is(err, event.ErrConcurrencyConflict), and it must be
// loaded again. Update and Create do that themselves.
func (r *Repository[T]) Save(ctx context.Context, agg T) error {
	ctx, span := r.startSpan(ctx, "es.Save", idOf(agg))
	defer span.End()
	_, err := r.save(ctx, nil, agg)
	return endSpan(span, err)
}

// SaveTx is Save inside the caller's transaction, so the caller's own
// writes commit with the events and their outbox rows. The store must
// implement event.TxStore; otherwise the error satisfies
// errors.Is(err, ErrTxUnsupported).
//
// agg's version advances when the append succeeds; if the caller then rolls
// back, discard agg and load it again. SaveTx takes a snapshot in tx when
// the policy says so and the snapshot store is a SnapshotTxStore on the
// same database; otherwise the next Save or Load takes it.
func (r *Repository[T]) SaveTx(ctx context.Context, tx *sql.Tx, agg T) error {
	ctx, span := r.startSpan(ctx, "es.SaveTx", idOf(agg))
	defer span.End()
	if _, ok := r.store.(event.TxStore); !ok {
		return endSpan(span, fmt.Errorf("save %s aggregate in a transaction: store %T: %w", r.cfg.StreamType, r.store, ErrTxUnsupported))
	}
	if tx == nil {
		return endSpan(span, errors.New("es: save in a transaction: tx is nil"))
	}
	_, err := r.save(ctx, tx, agg)
	return endSpan(span, err)
}

func (r *Repository[T]) save(ctx context.Context, tx *sql.Tx, agg T) (res event.AppendResult, err error) {
	root, err := rootOf(agg)
	if err != nil {
		return res, err
	}
	if len(root.pending) == 0 {
		return res, nil
	}
	if root.id == "" {
		return res, fmt.Errorf("es: save %s aggregate: it has no ID; call SetID before the first save", r.cfg.StreamType)
	}
	stream := r.Stream(root.id)
	if root.stale {
		return res, fmt.Errorf("save %s: the aggregate's state is not the stream's (an earlier save found its events already stored); load it again: %w",
			stream, event.ErrConcurrencyConflict)
	}
	expected := event.NoStream
	if root.version > 0 {
		expected = event.Exactly(root.version)
	}
	// The events carry the append span's trace context (eventMetadata).
	ctx, span := r.startAppendSpan(ctx, stream, root.version, len(root.pending))
	defer func() { endAppendSpan(span, err) }()
	md := eventMetadata(ctx)
	events := make([]event.Event, len(root.pending))
	for i, p := range root.pending {
		e, err := r.reg.NewEvent(p.data, withExtra(md, p.extra))
		if err != nil {
			return res, fmt.Errorf("save %s: event %d (%T): %w", stream, i, p.data, err)
		}
		if p.id != uuid.Nil {
			e.ID = p.id
		}
		e.StreamID = stream
		e.StreamType = r.cfg.StreamType
		events[i] = e
	}
	start := time.Now()
	if tx == nil {
		res, err = r.store.Append(ctx, stream, expected, events)
	} else {
		ts, ok := r.store.(event.TxStore)
		if !ok {
			return res, fmt.Errorf("save %s in a transaction: store %T: %w", stream, r.store, ErrTxUnsupported)
		}
		res, err = ts.AppendTx(ctx, tx, stream, expected, events)
	}
	r.metrics.recordAppend(ctx, start, len(events), err)
	if err != nil {
		return res, fmt.Errorf("save %s: %w", stream, err)
	}
	root.pending = nil
	root.version = res.Version
	// The store already held the first res.Skipped events: agg applied
	// them again on top of a state that may include them.
	root.stale = res.Skipped > 0
	span.SetAttributes(attribute.Int64("cqrskit.stream.version", res.Version))
	// Snapshot only state that is exactly the stream's (maybeSnapshot skips
	// a stale aggregate); inside tx, the snapshot commits with the events.
	r.maybeSnapshot(ctx, tx, stream, agg)
	return res, nil
}

// stored returns the stream's state after a save of agg that returned res.
// Usually that is agg; when the store skipped agg's events as already
// stored, agg applied them twice, and the state is loaded again: the
// committed state, plus res.Events when they are not committed yet (inside
// tx).
func (r *Repository[T]) stored(ctx context.Context, tx *sql.Tx, id string, agg T, res event.AppendResult) (T, error) {
	if !agg.Root().stale {
		return agg, nil
	}
	fresh, err := r.load(ctx, id, 0, tx == nil)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("reload %s after a save that found its events already stored: %w", r.Stream(id), err)
	}
	root := fresh.Root()
	for _, e := range res.Events {
		if e.Version <= root.version {
			continue // committed, and loaded
		}
		if e.Version != root.version+1 {
			var zero T
			return zero, fmt.Errorf("reload %s: stored event %s at version %d after version %d", r.Stream(id), e.ID, e.Version, root.version)
		}
		data, err := r.reg.Decode(e)
		if err != nil {
			var zero T
			return zero, fmt.Errorf("reload %s: %w", r.Stream(id), err)
		}
		if err := fresh.Apply(data); err != nil {
			var zero T
			return zero, fmt.Errorf("reload %s: apply event %s (%s) at version %d: %w", r.Stream(id), e.ID, e.Type, e.Version, err)
		}
		root.version = e.Version
	}
	return fresh, nil
}

// Create runs fn on a new aggregate with ID id and saves it, expecting its
// stream to be empty: if aggregate id already exists the error satisfies
// errors.Is(err, event.ErrConcurrencyConflict) and nothing is stored. An
// error from fn is returned as is.
func (r *Repository[T]) Create(ctx context.Context, id string, fn func(T) error) (T, error) {
	ctx, span := r.startSpan(ctx, "es.Create", id)
	defer span.End()
	var zero T
	if id == "" {
		return zero, endSpan(span, &event.ValidationError{Field: "id", Value: "", Reason: "aggregate ID must not be empty"})
	}
	agg, err := r.newAggregate()
	if err != nil {
		return zero, endSpan(span, err)
	}
	agg.Root().id = id
	if err := fn(agg); err != nil {
		return zero, endSpan(span, err)
	}
	res, err := r.save(ctx, nil, agg)
	if err != nil {
		return zero, endSpan(span, err)
	}
	agg, err = r.stored(ctx, nil, id, agg, res)
	return agg, endSpan(span, err)
}

// Update loads aggregate id, runs fn on it and saves it. On a concurrency
// conflict, or an error satisfying errors.Is(err, event.ErrRetryable), it
// runs the whole cycle again with a fresh load, up to UpdateRetries times;
// after the last attempt the error still satisfies errors.Is for the
// cause. An error from fn is returned as is, and nothing is saved.
//
// The aggregate returned is the stream's state: when the store skipped
// fn's events as already stored (a retried command whose events carry
// WithEventID), it is loaded again rather than returned with them applied
// twice.
//
// fn may run more than once: it must only change the aggregate.
func (r *Repository[T]) Update(ctx context.Context, id string, fn func(T) error) (T, error) {
	ctx, span := r.startSpan(ctx, "es.Update", id)
	defer span.End()
	var zero T
	attempts := 1 + r.cfg.UpdateRetries
	for attempt := 1; ; attempt++ {
		agg, err := r.load(ctx, id, 0, true)
		if err != nil {
			return zero, endSpan(span, err)
		}
		if err := fn(agg); err != nil {
			return zero, endSpan(span, err)
		}
		res, err := r.save(ctx, nil, agg)
		switch {
		case err == nil:
			span.SetAttributes(attribute.Int("cqrskit.attempts", attempt))
			agg, err = r.stored(ctx, nil, id, agg, res)
			return agg, endSpan(span, err)
		case !errors.Is(err, event.ErrConcurrencyConflict) && !errors.Is(err, event.ErrRetryable):
			return zero, endSpan(span, err)
		case attempt >= attempts:
			return zero, endSpan(span, fmt.Errorf("update %s: gave up after %d attempts: %w", r.Stream(id), attempts, err))
		}
		r.log.DebugContext(ctx, "es: retrying update", "stream", r.Stream(id), "attempt", attempt, "error", err)
		if err := ctx.Err(); err != nil {
			return zero, endSpan(span, fmt.Errorf("update %s: %w", r.Stream(id), err))
		}
	}
}

// UpdateTx is Update inside the caller's transaction, without retries: the
// caller owns the transaction, so on a conflict (or event.ErrRetryable) it
// rolls back and runs the whole transaction again. The store must
// implement event.TxStore. Like SaveTx, it takes a snapshot in tx when one
// is due and the snapshot store is a SnapshotTxStore on the same database.
func (r *Repository[T]) UpdateTx(ctx context.Context, tx *sql.Tx, id string, fn func(T) error) (T, error) {
	ctx, span := r.startSpan(ctx, "es.UpdateTx", id)
	defer span.End()
	var zero T
	if _, ok := r.store.(event.TxStore); !ok {
		return zero, endSpan(span, fmt.Errorf("update %s in a transaction: store %T: %w", r.Stream(id), r.store, ErrTxUnsupported))
	}
	if tx == nil {
		return zero, endSpan(span, errors.New("es: update in a transaction: tx is nil"))
	}
	agg, err := r.load(ctx, id, 0, false)
	if err != nil {
		return zero, endSpan(span, err)
	}
	if err := fn(agg); err != nil {
		return zero, endSpan(span, err)
	}
	res, err := r.save(ctx, tx, agg)
	if err != nil {
		return zero, endSpan(span, err)
	}
	agg, err = r.stored(ctx, tx, id, agg, res)
	return agg, endSpan(span, err)
}

func (r *Repository[T]) newAggregate() (T, error) {
	agg := r.cfg.New()
	if _, err := rootOf(agg); err != nil {
		var zero T
		return zero, fmt.Errorf("es: RepositoryConfig.New for %s: %w", r.cfg.StreamType, err)
	}
	return agg, nil
}

func idOf(a Aggregate) string {
	if root, err := rootOf(a); err == nil {
		return root.id
	}
	return ""
}
