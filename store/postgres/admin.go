package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store"
)

// This file holds read-mostly queries for operators, store.Admin: the
// cqrskit CLI lists streams, migrations and checkpoints with them. None is
// on a hot path.

var _ store.Admin = (*Store)(nil)

// ListStreams returns up to limit streams whose ID sorts after after, in
// stream ID order (the database collation); pass the last ID returned to
// read the next page, "" for the first.
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]store.StreamInfo, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT s.stream_id, s.stream_type, s.version, e.recorded_at
FROM {streams} s
LEFT JOIN {events} e ON e.stream_id = s.stream_id AND e.version = s.version
WHERE s.stream_id > $1
ORDER BY s.stream_id
LIMIT $2`), after, limit)
	if err != nil {
		return nil, wrap("list streams", err)
	}
	defer rows.Close()
	var out []store.StreamInfo
	for rows.Next() {
		var (
			si      store.StreamInfo
			updated sql.NullTime
		)
		if err := rows.Scan(&si.StreamID, &si.StreamType, &si.Version, &updated); err != nil {
			return nil, wrap("list streams", err)
		}
		if updated.Valid {
			si.UpdatedAt = updated.Time.UTC()
		}
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list streams", err)
	}
	return out, nil
}

// MigrationStatus returns the embedded migrations in order, each with
// whether the database recorded it in goose's version table. It only
// reads: unlike goose's own status it does not create the version table.
//
// Schema applied by hand from MigrationSQL is not recorded: its migrations
// show as pending, and TablesExist reports the tables.
func (s *Store) MigrationStatus(ctx context.Context) ([]store.Migration, error) {
	versionTable := s.Table(versionTable)
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&exists); err != nil {
		return nil, wrap("migration status", err)
	}
	applied := map[int64]time.Time{}
	if exists {
		// goose inserts a row per applied version (and deletes it on
		// down); the latest row of a version wins. tstamp is a timestamp
		// without time zone, written by now() in the session's zone.
		rows, err := s.db.QueryContext(ctx, `SELECT version_id, is_applied, tstamp AT TIME ZONE current_setting('TimeZone') FROM `+versionTable+` ORDER BY id`)
		if err != nil {
			return nil, wrap("migration status", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				v  int64
				ok bool
				at time.Time
			)
			if err := rows.Scan(&v, &ok, &at); err != nil {
				return nil, wrap("migration status", err)
			}
			if ok {
				applied[v] = at.UTC()
			} else {
				delete(applied, v)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, wrap("migration status", err)
		}
	}
	return migrationStates(s.migrations, applied)
}

// migrationStates lists files' migrations with their applied times.
func migrationStates(files fs.FS, applied map[int64]time.Time) ([]store.Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]store.Migration, 0, len(names))
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		at, ok := applied[v]
		out = append(out, store.Migration{Version: v, Name: name, Applied: ok, AppliedAt: at})
	}
	return out, nil
}

// TablesExist reports whether the store's events table exists, whether
// Migrate created it or a user applied MigrationSQL by hand.
func (s *Store) TablesExist(ctx context.Context) (bool, error) {
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.Table("events")).Scan(&exists); err != nil {
		return false, wrap("look for the events table", err)
	}
	return exists, nil
}

// Head returns the cursor of the last event in (TxID, Position) order, the
// zero Cursor when the store is empty. The event may belong to a
// transaction that ReadAll does not return yet (see ReadAll); a catch-up
// reader has reached Head once its cursor is not Less than it.
func (s *Store) Head(ctx context.Context) (event.Cursor, error) {
	var (
		c    event.Cursor
		txID int64
	)
	err := s.db.QueryRowContext(ctx, s.adminSQL(`SELECT (tx_id::text)::bigint, position FROM {events} AS ev ORDER BY ev.tx_id DESC, ev.position DESC LIMIT 1`)).
		Scan(&txID, &c.Position)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return event.Cursor{}, nil
	case err != nil:
		return event.Cursor{}, wrap("read the head of the log", err)
	}
	c.TxID = uint64(txID)
	return c, nil
}

// LiveCursor returns a cursor for following the log from now on: ReadAll
// after it returns every event that commits from now on, and skips only
// events of transactions that ended before the call. Its TxID is the oldest
// transaction still running on the server (pg_snapshot_xmin), so events of
// transactions that ended moments before the call, with a higher ID, are
// returned too: it may repeat a little of the past, never skip an event.
func (s *Store) LiveCursor(ctx context.Context) (event.Cursor, error) {
	var xmin int64
	if err := s.db.QueryRowContext(ctx, `SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint`).Scan(&xmin); err != nil {
		return event.Cursor{}, wrap("read the oldest running transaction", err)
	}
	return event.Cursor{TxID: uint64(xmin)}, nil
}

// ListCheckpoints returns every projection checkpoint, by name.
func (s *Store) ListCheckpoints(ctx context.Context) ([]store.CheckpointInfo, error) {
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT name, tx_id, position, updated_at FROM {checkpoints} ORDER BY name`))
	if err != nil {
		return nil, wrap("list checkpoints", err)
	}
	defer rows.Close()
	var out []store.CheckpointInfo
	for rows.Next() {
		var (
			c    store.CheckpointInfo
			txID int64
		)
		if err := rows.Scan(&c.Name, &txID, &c.Cursor.Position, &c.UpdatedAt); err != nil {
			return nil, wrap("list checkpoints", err)
		}
		c.Cursor.TxID = uint64(txID)
		c.UpdatedAt = c.UpdatedAt.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list checkpoints", err)
	}
	return out, nil
}

// adminSQL fills the {table} placeholders of query.
func (s *Store) adminSQL(query string) string {
	return tableReplacer(s.cfg, "streams", "events", "checkpoints", "processed").Replace(query)
}

// LeaseHolder describes the session holding the outbox relay's advisory
// lock (see Leader): the active relay.
type LeaseHolder struct {
	// PID is the session's backend process ID (pg_backend_pid()).
	PID int
	// ApplicationName is the session's application_name, "" if unset or
	// hidden from this role.
	ApplicationName string
	// ClientAddr is the client's address, "" over a Unix socket or when
	// hidden from this role.
	ClientAddr string
	// User is the session's role.
	User string
	// SessionStart is when the session connected, in UTC; PostgreSQL does
	// not record when the lock was taken. Zero when hidden.
	SessionStart time.Time
}

// LeaseHolder returns the session holding the outbox relay's advisory
// lock, and false when no relay is active. It reads pg_locks, joined with
// pg_stat_activity for the session's details.
func (s *Store) LeaseHolder(ctx context.Context) (LeaseHolder, bool, error) {
	var (
		h       LeaseHolder
		started sql.NullTime
	)
	err := s.db.QueryRowContext(ctx, `SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), ''),
	coalesce(a.usename::text, ''), a.backend_start
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (l.classid::bigint << 32 | l.objid::bigint) = `+relayLockKey+`
LIMIT 1`, s.Table("outbox")).Scan(&h.PID, &h.ApplicationName, &h.ClientAddr, &h.User, &started)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return LeaseHolder{}, false, nil
	case err != nil:
		return LeaseHolder{}, false, wrap("find the relay lock's holder", err)
	}
	if started.Valid {
		h.SessionStart = started.Time.UTC()
	}
	return h, true, nil
}

// Processed reports whether handlerName's processed mark for eventID
// exists: whether the handler has processed the event.
func (s *Store) Processed(ctx context.Context, handlerName string, eventID uuid.UUID) (bool, error) {
	var ok bool
	err := s.db.QueryRowContext(ctx, s.adminSQL(`SELECT EXISTS (SELECT 1 FROM {processed} WHERE handler = $1 AND event_id = $2)`),
		handlerName, eventID).Scan(&ok)
	if err != nil {
		return false, wrap(fmt.Sprintf("look up event %s's processed mark of handler %s", eventID, handlerName), err)
	}
	return ok, nil
}

// RelayLeases returns the session holding the outbox relay's advisory lock
// (see LeaseHolder) as the one active lease, or none when no relay is
// active. See store.Admin.
func (s *Store) RelayLeases(ctx context.Context) ([]store.RelayLease, error) {
	h, held, err := s.LeaseHolder(ctx)
	if err != nil || !held {
		return nil, err
	}
	holder := fmt.Sprintf("backend pid %d", h.PID)
	if h.ApplicationName != "" {
		holder += ", application " + h.ApplicationName
	}
	if h.ClientAddr != "" {
		holder += ", client " + h.ClientAddr
	}
	return []store.RelayLease{{
		Holder: holder, Active: true, PID: h.PID, Application: h.ApplicationName,
		ClientAddr: h.ClientAddr, User: h.User, SessionStart: h.SessionStart,
	}}, nil
}
