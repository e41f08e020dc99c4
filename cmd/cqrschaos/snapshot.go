//go:build unix

package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// The sample's consumer names (sample/infra): they key the processed marks
// and the dead letters.
const (
	productsHandler = "sample.products"
	alertsHandler   = "sample.low-stock-alerts"
)

// tablePrefix is the framework tables' prefix in the sample's database.
const tablePrefix = "cqrs_"

// database is the sample's database, opened by the suite for reading.
type database struct {
	db    *sql.DB
	store event.Store
	close func() error
}

func openPostgres(url string) (*database, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	s, err := postgres.New(db, postgres.Config{TablePrefix: tablePrefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &database{db: db, store: s, close: db.Close}, nil
}

func openSQLite(ctx context.Context, path string) (*database, error) {
	s, err := sqlite.Open(ctx, path, sqlite.Config{TablePrefix: tablePrefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	return &database{db: s.DB(), store: s, close: s.Close}, nil
}

// The rows of the sample's read models.
type (
	productRow struct {
		name, sku    string
		price, stock int64
		discontinued bool
		version      int64
	}
	alertRow struct {
		product        string
		stock, version int64
	}
	statsRow struct {
		price, stock int64
		discontinued bool
	}
	deadLetter struct {
		handler string
		event   uuid.UUID
		err     string
	}
)

// snapshot is everything the checks read, taken from outside the sample.
type snapshot struct {
	events   []event.Event // the global log, in its order
	products map[string]productRow
	alerts   map[uuid.UUID]alertRow
	stats    map[string]statsRow
	marks    map[string]map[uuid.UUID]bool // handler -> event IDs
	dead     []deadLetter
	outbox   int
	broker   *brokerLog // nil when not read
}

// take reads the store and the read models.
func (d *database) take(ctx context.Context) (*snapshot, error) {
	s := &snapshot{products: map[string]productRow{}, alerts: map[uuid.UUID]alertRow{},
		stats: map[string]statsRow{}, marks: map[string]map[uuid.UUID]bool{}}
	var cur event.Cursor
	for {
		evs, err := d.store.ReadAll(ctx, cur, 2000)
		if err != nil {
			return nil, fmt.Errorf("read the event store: %w", err)
		}
		s.events = append(s.events, evs...)
		if len(evs) < 2000 {
			break
		}
		cur = evs[len(evs)-1].Cursor()
	}
	query := func(q string, scan func(*sql.Rows) error) error {
		rows, err := d.db.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return rows.Err()
	}
	err := query(`SELECT id, name, sku, price_cents, stock, discontinued, version FROM products`, func(rows *sql.Rows) error {
		var (
			id string
			p  productRow
		)
		err := rows.Scan(&id, &p.name, &p.sku, &p.price, &p.stock, &p.discontinued, &p.version)
		s.products[id] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	err = query(`SELECT event_id, product_id, stock, version FROM stock_alerts`, func(rows *sql.Rows) error {
		var (
			id string
			a  alertRow
		)
		if err := rows.Scan(&id, &a.product, &a.stock, &a.version); err != nil {
			return err
		}
		u, err := uuid.Parse(id)
		s.alerts[u] = a
		return err
	})
	if err != nil {
		return nil, err
	}
	err = query(`SELECT id, price_cents, stock, discontinued FROM stats_products`, func(rows *sql.Rows) error {
		var (
			id string
			st statsRow
		)
		err := rows.Scan(&id, &st.price, &st.stock, &st.discontinued)
		s.stats[id] = st
		return err
	})
	if err != nil {
		return nil, err
	}
	err = query(`SELECT handler, CAST(event_id AS TEXT) FROM `+tablePrefix+`processed`, func(rows *sql.Rows) error {
		var h, id string
		if err := rows.Scan(&h, &id); err != nil {
			return err
		}
		u, err := uuid.Parse(id)
		if s.marks[h] == nil {
			s.marks[h] = map[uuid.UUID]bool{}
		}
		s.marks[h][u] = true
		return err
	})
	if err != nil {
		return nil, err
	}
	err = query(`SELECT handler, CAST(event_id AS TEXT), error FROM `+tablePrefix+`dead_letters ORDER BY id`, func(rows *sql.Rows) error {
		var (
			dl deadLetter
			id string
		)
		if err := rows.Scan(&dl.handler, &id, &dl.err); err != nil {
			return err
		}
		var err error
		dl.event, err = uuid.Parse(id)
		s.dead = append(s.dead, dl)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+tablePrefix+`outbox`).Scan(&s.outbox)
	return s, err
}

// fingerprint changes when the sample makes progress: more events, fewer
// in the outbox, more marks, read models further on.
func (s *snapshot) fingerprint() string {
	marks, versions, stock := 0, int64(0), int64(0)
	for _, m := range s.marks {
		marks += len(m)
	}
	for _, p := range s.products {
		versions += p.version
	}
	for _, st := range s.stats {
		stock += st.stock
	}
	return fmt.Sprint(len(s.events), s.outbox, marks, versions, len(s.alerts), len(s.dead), len(s.stats), stock)
}
