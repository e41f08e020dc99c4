package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// SnapshotEvery is the snapshot policy: a product is snapshotted each time
// its version crosses a multiple of 50.
const SnapshotEvery = 50

// Config configures a Service.
type Config struct {
	// Store holds the events and the outbox; the SKU index is written in
	// transactions begun on its DB. Required.
	Store event.TxStore
	// Snapshots stores product snapshots, every SnapshotEvery events.
	// Defaults to none.
	Snapshots es.SnapshotStore
	// Registry holds the product's events. Defaults to domain.NewRegistry().
	Registry *event.Registry
	// ConflictTimeout bounds how long an unconditional command retries
	// after concurrency conflicts, with jittered exponential backoff,
	// before it fails with event.ErrConcurrencyConflict. Defaults to 10s.
	ConflictTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider and MeterProvider receive the repository's spans and
	// append metrics. Default to otel's global providers.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Service runs the product commands against the event store and reads the
// store for history and past states. It is safe for concurrent use.
type Service struct {
	store event.TxStore
	reg   *event.Registry
	repo  *es.Repository[*domain.Product]
	cfg   Config
}

// NewService validates cfg and returns a service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("app: Config.Store is required")
	}
	if cfg.ConflictTimeout < 0 {
		return nil, fmt.Errorf("app: Config.ConflictTimeout %s: must not be negative", cfg.ConflictTimeout)
	}
	cfg.Registry = cmp.Or(cfg.Registry, domain.NewRegistry())
	cfg.ConflictTimeout = cmp.Or(cfg.ConflictTimeout, 10*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	rc := es.RepositoryConfig[*domain.Product]{
		New:             domain.New,
		StreamType:      domain.StreamType,
		SnapshotVersion: domain.SnapshotVersion,
		UpdateRetries:   es.NoRetries, // Execute retries with backoff instead
		Logger:          cfg.Logger,
		TracerProvider:  cfg.TracerProvider,
		MeterProvider:   cfg.MeterProvider,
	}
	if cfg.Snapshots != nil {
		rc.Snapshots = cfg.Snapshots
		rc.SnapshotPolicy = es.EveryN(SnapshotEvery)
	}
	repo, err := es.NewRepository(cfg.Store, cfg.Registry, rc)
	if err != nil {
		return nil, err
	}
	return &Service{store: cfg.Store, reg: cfg.Registry, repo: repo, cfg: cfg}, nil
}

// Registry returns the registry the service encodes events with.
func (s *Service) Registry() *event.Registry { return s.reg }

// NewProduct is the Create command's input.
type NewProduct struct {
	Name       string
	SKU        string
	PriceCents int64
	Stock      int64
}

// Create creates a product with a new ID and returns the ID and version.
//
// The SKU is reserved in sku_index in the same transaction as the append,
// so of two products created with one SKU at the same time exactly one
// commits; the other gets a *SKUTakenError and nothing of it is stored.
// SKUs are unique regardless of case ("cup-esp" is taken by "CUP-ESP"):
// the index holds them upper-cased (SKUKey); the product keeps the SKU as
// given.
func (s *Service) Create(ctx context.Context, np NewProduct) (string, int64, error) {
	id := event.NewID().String()
	p := domain.New()
	if err := p.Create(id, np.Name, np.SKU, np.PriceCents, np.Stock); err != nil {
		return "", 0, err
	}
	tx, err := s.store.DB().BeginTx(ctx, nil)
	if err != nil {
		return "", 0, fmt.Errorf("create product: begin: %w", err)
	}
	defer tx.Rollback()
	// ON CONFLICT DO NOTHING tells a taken SKU by the row count, with no
	// driver-specific error codes, on SQLite and PostgreSQL alike. A
	// concurrent transaction holding the same SKU makes this insert wait
	// for its outcome.
	key := SKUKey(p.SKU)
	res, err := tx.ExecContext(ctx, `INSERT INTO sku_index (sku, product_id) VALUES ($1, $2) ON CONFLICT (sku) DO NOTHING`, key, id)
	if err != nil {
		return "", 0, fmt.Errorf("create product: reserve SKU %q: %w", p.SKU, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", 0, fmt.Errorf("create product: reserve SKU %q: %w", p.SKU, err)
	} else if n == 0 {
		var holder string
		if err := tx.QueryRowContext(ctx, `SELECT product_id FROM sku_index WHERE sku = $1`, key).Scan(&holder); err != nil {
			return "", 0, fmt.Errorf("create product: SKU %q is taken; look up its product: %w", p.SKU, err)
		}
		return "", 0, &SKUTakenError{SKU: p.SKU, ProductID: holder}
	}
	if err := s.repo.SaveTx(ctx, tx, p); err != nil {
		return "", 0, fmt.Errorf("create product: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", 0, fmt.Errorf("create product %s: commit: %w", id, err)
	}
	s.signal()
	return id, p.Version(), nil
}

// SKUKey is the form of sku the SKU index holds: upper case, so SKUs
// differing only in case collide. SKUs are ASCII (domain.checkSKU).
func SKUKey(sku string) string { return strings.ToUpper(sku) }

// signal tells the store that a transaction with events committed, which
// wakes the outbox relay at once (see event.TxStore.Committed).
func (s *Service) signal() { s.store.Committed() }

// Execute runs command on product id and saves what it raised, returning
// the product's version afterwards.
//
// With ifMatch > 0 the command is conditional: it runs only on the product
// at exactly that version, and otherwise fails with a *PreconditionError,
// also when another writer saves first. With ifMatch == 0 a concurrency
// conflict reloads the product and runs command again, with jittered
// exponential backoff, for up to Config.ConflictTimeout.
func (s *Service) Execute(ctx context.Context, id string, ifMatch int64, command func(*domain.Product) error) (int64, error) {
	id, err := ParseID(id)
	if err != nil {
		return 0, err
	}
	attempt := func() (int64, error) {
		p, err := s.repo.Update(ctx, id, func(p *domain.Product) error {
			if ifMatch > 0 && p.Version() != ifMatch {
				return &PreconditionError{ID: id, Expected: ifMatch, Actual: p.Version()}
			}
			return command(p)
		})
		switch {
		case err == nil:
			return p.Version(), nil
		case errors.Is(err, event.ErrStreamNotFound):
			return 0, backoff.Permanent(&NotFoundError{ID: id})
		case errors.Is(err, event.ErrConcurrencyConflict) && ifMatch > 0:
			pe := &PreconditionError{ID: id, Expected: ifMatch}
			if ce := (*event.ConcurrencyError)(nil); errors.As(err, &ce) {
				pe.Actual = ce.Actual
			}
			return 0, backoff.Permanent(pe)
		case errors.Is(err, event.ErrConcurrencyConflict):
			return 0, err // retried
		default:
			return 0, backoff.Permanent(err)
		}
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     2 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         200 * time.Millisecond,
	}
	return backoff.Retry(ctx, attempt, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(s.cfg.ConflictTimeout))
}

// Product returns product id as the event store has it now, or, with
// atVersion > 0, as it was after its first atVersion events. A version
// the product has not reached is an error satisfying
// errors.Is(err, es.ErrVersionNotFound), a *VersionNotFoundError.
func (s *Service) Product(ctx context.Context, id string, atVersion int64) (*domain.Product, error) {
	id, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	var p *domain.Product
	if atVersion > 0 {
		p, err = s.repo.LoadAt(ctx, id, atVersion)
	} else {
		p, err = s.repo.Load(ctx, id)
	}
	switch {
	case errors.Is(err, event.ErrStreamNotFound):
		return nil, &NotFoundError{ID: id}
	case errors.Is(err, es.ErrVersionNotFound):
		vnf := &VersionNotFoundError{ID: id, Want: atVersion}
		if cur, lerr := s.repo.Load(ctx, id); lerr == nil {
			vnf.Have = cur.Version()
		}
		return nil, vnf
	}
	return p, err
}

// CheckVersion reports whether product id has reached version v: nil if
// so, a *NotFoundError or *VersionNotFoundError if not. It reads one event,
// not the whole stream.
func (s *Service) CheckVersion(ctx context.Context, id string, v int64) error {
	id, err := ParseID(id)
	if err != nil {
		return err
	}
	for e, err := range s.store.Load(ctx, s.repo.Stream(id), v) {
		if errors.Is(err, event.ErrStreamNotFound) {
			return &NotFoundError{ID: id}
		}
		if err != nil {
			return err
		}
		if e.Version >= v {
			return nil
		}
		break
	}
	_, err = s.Product(ctx, id, v) // not there: say why
	return err
}

// History returns up to limit of product id's events after version after,
// and whether more follow.
func (s *Service) History(ctx context.Context, id string, after int64, limit int) ([]event.Event, bool, error) {
	id, err := ParseID(id)
	if err != nil {
		return nil, false, err
	}
	var out []event.Event
	for e, err := range s.store.Load(ctx, s.repo.Stream(id), after+1) {
		switch {
		case errors.Is(err, event.ErrStreamNotFound):
			return nil, false, &NotFoundError{ID: id}
		case err != nil:
			return nil, false, fmt.Errorf("history of product %s: %w", id, err)
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, e)
	}
	return out, false, nil
}

// ParseID returns id in canonical form (lower-case UUID), or an error
// satisfying errors.Is(err, ErrNotFound) when id is not a product ID at all.
func ParseID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 { // only the plain 8-4-4-4-12 form
		return "", &NotFoundError{ID: id, NotAnID: true}
	}
	return u.String(), nil
}
