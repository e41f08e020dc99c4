package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ReadAll returns only events below the read horizon: the smallest id of
// a transaction still running (see readAllSQL). A transaction that took an
// id and then idles, or a prepared transaction, holds the horizon, and so
// every catch-up reader, back until it ends. This file reports who does
// it: ReadHorizon for the doctor and operators, a gauge, and a warning
// logged by a reader that caught up while the horizon was old.

// DefaultHorizonWarnAfter is Config.HorizonWarnAfter's default.
const DefaultHorizonWarnAfter = 30 * time.Second

// horizonCheckEvery bounds how often ReadAll looks at the horizon.
const horizonCheckEvery = 10 * time.Second

// horizonTimeout bounds the horizon query of a metrics collection.
const horizonTimeout = 5 * time.Second

// ReadHorizon is the state of ReadAll's horizon, as Store.ReadHorizon
// reports it.
type ReadHorizon struct {
	// Horizon is the transaction id below which ReadAll returns events.
	Horizon uint64
	// NextTxID is the id the server will give the next transaction
	// (pg_snapshot_xmax); Horizon equals it when nothing holds it back.
	NextTxID uint64
	// Age is how long the transaction at the horizon (Blockers[0]) has
	// run, or been prepared; 0 when no transaction holds the horizon.
	Age time.Duration
	// Blockers are the running transactions ReadAll waits for, by
	// transaction id: every one that holds an id, in this database or one
	// that cannot be placed (a prepared transaction, a backend that
	// pg_stat_activity hides from this role).
	Blockers []HorizonBlocker
	// Waiting counts committed events ReadAll cannot return yet, up to
	// 10,000.
	Waiting int64
}

// HorizonBlocker is a running transaction that holds the read horizon.
type HorizonBlocker struct {
	// TxID is the transaction's id.
	TxID uint64
	// Age is how long it has run (or, prepared, been waiting for COMMIT
	// PREPARED or ROLLBACK PREPARED).
	Age time.Duration
	// PID is the backend running it; 0 for a prepared transaction or one
	// pg_stat_activity does not show.
	PID             int
	User            string
	ApplicationName string
	ClientAddr      string
	// State is pg_stat_activity.state, for example "idle in transaction".
	State string
	// Started is when the transaction (or, prepared, its PREPARE) began.
	Started time.Time
	// Query is the start of the last statement the backend ran.
	Query string
	// PreparedGID is the prepared transaction's identifier; "" for a
	// backend.
	PreparedGID string
	// Database is the prepared transaction's database.
	Database string
}

// String names the blocker for a log line or the doctor.
func (b HorizonBlocker) String() string {
	age := b.Age.Round(time.Millisecond)
	switch {
	case b.PreparedGID != "":
		return fmt.Sprintf("prepared transaction %q (tx %d, database %s, owner %s) prepared %s ago: end it with COMMIT PREPARED or ROLLBACK PREPARED %s",
			b.PreparedGID, b.TxID, b.Database, b.User, age, quoteLiteral(b.PreparedGID))
	case b.PID == 0:
		return fmt.Sprintf("transaction %d, running for an unknown time (not in pg_stat_activity: another role's backend, or it just ended)", b.TxID)
	}
	parts := []string{fmt.Sprintf("backend pid %d (tx %d", b.PID, b.TxID)}
	for _, kv := range [][2]string{{"user", b.User}, {"application", b.ApplicationName}, {"client", b.ClientAddr}, {"state", b.State}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	s := strings.Join(parts, ", ") + fmt.Sprintf(") in a transaction for %s", age)
	if b.Query != "" {
		s += fmt.Sprintf(", last query %q", b.Query)
	}
	return s + fmt.Sprintf(": end it, or SELECT pg_terminate_backend(%d)", b.PID)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// horizonSQL lists the transactions that hold readAllSQL's horizon, by
// the same rule: every transaction in the snapshot's running list except
// backends of other databases. The snapshot row comes first (LEFT JOIN),
// so there is a row when nothing runs.
const horizonSQL = `WITH snap AS (SELECT pg_current_snapshot() AS s),
running AS (
	SELECT x,
		a.pid, a.usename::text AS usename, a.application_name, host(a.client_addr) AS client_addr,
		a.state, a.xact_start, left(a.query, 200) AS query,
		p.gid, p.prepared, p.database::text AS database, p.owner::text AS owner
	FROM snap, pg_snapshot_xip(snap.s) AS x
	LEFT JOIN pg_stat_activity a ON a.backend_xid = x::xid
	LEFT JOIN pg_prepared_xacts p ON p.transaction = x::xid
	WHERE a.pid IS NULL
	   OR a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT pg_snapshot_xmax(snap.s)::text, r.x::text,
	r.pid, coalesce(r.usename, r.owner, ''), coalesce(r.application_name, ''), coalesce(r.client_addr, ''),
	coalesce(r.state, ''), coalesce(r.xact_start, r.prepared), coalesce(r.query, ''),
	coalesce(r.gid, ''), coalesce(r.database, ''),
	coalesce(extract(epoch FROM clock_timestamp() - coalesce(r.xact_start, r.prepared))::float8, 0)
FROM snap LEFT JOIN running r ON true
ORDER BY r.x`

// waitingSQL counts committed events at or above the horizon, up to
// 10,000 so the check stays cheap when a large backlog waits.
const waitingSQL = `SELECT count(*) FROM (SELECT 1 FROM {events} WHERE tx_id >= $1::text::xid8 LIMIT 10000) w`

// horizonProbe reads the horizon for a Store, its gauge and its
// warnings. It holds no reference to the Store, so that the Store can be
// collected and the gauge unregistered (see newHorizonProbe).
type horizonProbe struct {
	db        *sql.DB
	waiting   string
	log       *slog.Logger
	warnAfter time.Duration // < 0: never warn
	every     time.Duration
	next      atomic.Int64 // unix nanoseconds of the next check
}

func newHorizonProbe(db *sql.DB, cfg Config, q queries) *horizonProbe {
	return &horizonProbe{
		db: db, waiting: q.horizonWaiting, log: cfg.Logger,
		warnAfter: cfg.HorizonWarnAfter, every: min(horizonCheckEvery, max(cfg.HorizonWarnAfter, 0)),
	}
}

// ReadHorizon reports ReadAll's horizon: which transactions hold it back,
// the age of the oldest one and how many committed events wait behind it.
// It reads pg_stat_activity and pg_prepared_xacts; a role without
// pg_read_all_stats sees other roles' backends as unplaceable blockers.
func (s *Store) ReadHorizon(ctx context.Context) (ReadHorizon, error) {
	h, err := s.horizon.read(ctx, true)
	if err != nil {
		return ReadHorizon{}, wrap("read horizon", err)
	}
	return h, nil
}

func (p *horizonProbe) read(ctx context.Context, countWaiting bool) (ReadHorizon, error) {
	rows, err := p.db.QueryContext(ctx, horizonSQL)
	if err != nil {
		return ReadHorizon{}, err
	}
	defer rows.Close()
	var h ReadHorizon
	for rows.Next() {
		var (
			xmax                                         string
			xid                                          sql.NullString
			pid                                          sql.NullInt64
			user, app, addr, state, query, gid, database string
			started                                      sql.NullTime
			age                                          float64
		)
		if err := rows.Scan(&xmax, &xid, &pid, &user, &app, &addr, &state, &started, &query, &gid, &database, &age); err != nil {
			return ReadHorizon{}, err
		}
		if h.NextTxID, err = strconv.ParseUint(xmax, 10, 64); err != nil {
			return ReadHorizon{}, fmt.Errorf("parse pg_snapshot_xmax %q: %w", xmax, err)
		}
		if !xid.Valid {
			continue
		}
		b := HorizonBlocker{
			PID: int(pid.Int64), User: user, ApplicationName: app, ClientAddr: addr, State: state,
			Query: query, PreparedGID: gid, Database: database,
			Age: max(0, time.Duration(age*float64(time.Second))),
		}
		if b.TxID, err = strconv.ParseUint(xid.String, 10, 64); err != nil {
			return ReadHorizon{}, fmt.Errorf("parse running transaction id %q: %w", xid.String, err)
		}
		if started.Valid {
			b.Started = started.Time.UTC()
		}
		h.Blockers = append(h.Blockers, b)
	}
	if err := rows.Err(); err != nil {
		return ReadHorizon{}, err
	}
	h.Horizon = h.NextTxID
	if len(h.Blockers) > 0 {
		h.Horizon, h.Age = h.Blockers[0].TxID, h.Blockers[0].Age
	}
	if countWaiting {
		if err := p.db.QueryRowContext(ctx, p.waiting, strconv.FormatUint(h.Horizon, 10)).Scan(&h.Waiting); err != nil {
			return ReadHorizon{}, err
		}
	}
	return h, nil
}

// check runs after a ReadAll that returned less than asked for (the
// reader is at the tail, or held at the horizon): at most once per
// horizonCheckEvery per store, it reads the horizon and warns when it is
// older than Config.HorizonWarnAfter. A busy reader that gets full
// batches never pays for it.
func (p *horizonProbe) check(ctx context.Context) {
	if p.warnAfter < 0 {
		return
	}
	now := time.Now().UnixNano()
	next := p.next.Load()
	if now < next || !p.next.CompareAndSwap(next, now+int64(p.every)) {
		return
	}
	h, err := p.read(ctx, true)
	if err != nil {
		p.log.DebugContext(ctx, "postgres store: cannot read the read horizon", "err", err)
		return
	}
	if len(h.Blockers) == 0 || h.Age < p.warnAfter {
		return
	}
	b := h.Blockers[0]
	p.log.WarnContext(ctx, "postgres store: catch-up readers are held back by a long transaction; committed events after it stay unread until it ends (set idle_in_transaction_session_timeout)",
		"blocker", b.String(), "pid", b.PID, "application_name", b.ApplicationName, "client_addr", b.ClientAddr,
		"state", b.State, "prepared_gid", b.PreparedGID, "tx_id", b.TxID, "age", h.Age.Round(time.Millisecond),
		"events_waiting", h.Waiting, "other_blockers", len(h.Blockers)-1)
}

// horizonScope is the instrumentation scope of the store's metrics.
const horizonScope = "github.com/cqrskit/cqrskit/store/postgres"

// registerHorizonGauge makes cqrskit.postgres.read_horizon.age observable.
// Its callback queries the horizon only when a metrics reader collects.
// The registration ends when the Store is garbage collected.
func registerHorizonGauge(s *Store, mp metric.MeterProvider, eventsTable string) {
	meter := mp.Meter(horizonScope)
	gauge, err := meter.Float64ObservableGauge("cqrskit.postgres.read_horizon.age",
		metric.WithUnit("s"),
		metric.WithDescription("How long the transaction holding back the gap-safe read horizon has run; catch-up readers see no event committed after it until it ends. 0 when nothing holds it."))
	if err != nil {
		otel.Handle(fmt.Errorf("postgres store: create the read horizon gauge: %w", err))
		return
	}
	p := s.horizon // the callback must not refer to s
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("cqrskit.events_table", eventsTable)))
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, horizonTimeout)
		defer cancel()
		h, err := p.read(ctx, false)
		if err != nil {
			p.log.DebugContext(ctx, "postgres store: metrics: cannot read the read horizon", "err", err)
			return nil
		}
		o.ObserveFloat64(gauge, h.Age.Seconds(), attrs)
		return nil
	}, gauge)
	if err != nil {
		otel.Handle(fmt.Errorf("postgres store: register the read horizon gauge: %w", err))
		return
	}
	runtime.AddCleanup(s, func(reg metric.Registration) {
		if err := reg.Unregister(); err != nil {
			otel.Handle(fmt.Errorf("postgres store: unregister the read horizon gauge: %w", err))
		}
	}, reg)
}
