package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"strings"
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
// stream ID order (byte order); pass the last ID returned to read the next
// page, "" for the first.
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]store.StreamInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list streams: limit %d: must be >= 1", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT s.stream_id, s.stream_type, s.version, e.recorded_at
		FROM {p}streams s
		LEFT JOIN {p}events e ON e.stream_id = s.stream_id AND e.version = s.version
		WHERE s.stream_id > ?
		ORDER BY s.stream_id
		LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", s.explain(ctx, s.db, s.prefix+"streams", err))
	}
	defer rows.Close()
	var out []store.StreamInfo
	for rows.Next() {
		var (
			si      store.StreamInfo
			updated sql.NullInt64
		)
		if err := rows.Scan(&si.StreamID, &si.StreamType, &si.Version, &updated); err != nil {
			return nil, fmt.Errorf("list streams: %w", err)
		}
		if updated.Valid {
			si.UpdatedAt = time.Unix(0, updated.Int64).UTC()
		}
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
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
	versionTable := s.prefix + versionTable
	exists, err := s.tableExists(ctx, versionTable)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	applied := map[int64]time.Time{}
	if exists {
		// goose inserts a row per applied version (and deletes it on
		// down); the latest row of a version wins. tstamp is text
		// written by datetime('now').
		rows, err := s.db.QueryContext(ctx, `SELECT version_id, is_applied, coalesce(CAST(tstamp AS TEXT), '') FROM `+versionTable+` ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("migration status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				v     int64
				ok    bool
				stamp string
			)
			if err := rows.Scan(&v, &ok, &stamp); err != nil {
				return nil, fmt.Errorf("migration status: %w", err)
			}
			if !ok {
				delete(applied, v)
				continue
			}
			applied[v] = parseGooseTime(stamp)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("migration status: %w", err)
		}
	}
	names, err := fs.Glob(s.migrations, "*.sql")
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

// parseGooseTime parses the version table's tstamp; the zero time if it is
// in a format not known here.
func parseGooseTime(s string) time.Time {
	for _, layout := range []string{time.DateTime, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// TablesExist reports whether the store's events table exists, whether
// Migrate created it or a user applied MigrationSQL by hand.
func (s *Store) TablesExist(ctx context.Context) (bool, error) {
	ok, err := s.tableExists(ctx, s.q.eventsTable)
	if err != nil {
		return false, fmt.Errorf("look for the events table: %w", err)
	}
	return ok, nil
}

func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n)
	return n > 0, err
}

// Head returns the cursor of the last event, the zero Cursor when the
// store is empty. A catch-up reader has reached Head once its cursor is
// not Less than it.
func (s *Store) Head(ctx context.Context) (event.Cursor, error) {
	var c event.Cursor
	if err := s.db.QueryRowContext(ctx, s.adminSQL(`SELECT coalesce(max(position), 0) FROM {p}events`)).Scan(&c.Position); err != nil {
		return event.Cursor{}, fmt.Errorf("read the head of the log: %w", s.explain(ctx, s.db, s.q.eventsTable, err))
	}
	return c, nil
}

// LiveCursor returns a cursor for following the log from now on: ReadAll
// after it returns every event that commits later. In SQLite, where
// positions commit in order, it is Head.
func (s *Store) LiveCursor(ctx context.Context) (event.Cursor, error) { return s.Head(ctx) }

// ListCheckpoints returns every projection checkpoint, by name.
func (s *Store) ListCheckpoints(ctx context.Context) ([]store.CheckpointInfo, error) {
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT name, tx_id, position, updated_at FROM {p}checkpoints ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", s.explain(ctx, s.db, s.prefix+"checkpoints", err))
	}
	defer rows.Close()
	var out []store.CheckpointInfo
	for rows.Next() {
		var (
			c             store.CheckpointInfo
			txID, updated int64
		)
		if err := rows.Scan(&c.Name, &txID, &c.Cursor.Position, &updated); err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		c.Cursor.TxID = uint64(txID)
		c.UpdatedAt = time.Unix(0, updated).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

// adminSQL fills the {p} table prefix placeholders of query.
func (s *Store) adminSQL(query string) string { return strings.ReplaceAll(query, "{p}", s.prefix) }

// Processed reports whether handlerName's processed mark for eventID
// exists: whether the handler has processed the event.
func (s *Store) Processed(ctx context.Context, handlerName string, eventID uuid.UUID) (bool, error) {
	var ok bool
	err := s.db.QueryRowContext(ctx, s.adminSQL(`SELECT EXISTS (SELECT 1 FROM {p}processed WHERE handler = ? AND event_id = ?)`),
		handlerName, eventID.String()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up event %s's processed mark of handler %s: %w", eventID, handlerName, s.explain(ctx, s.db, s.prefix+"processed", err))
	}
	return ok, nil
}

// RelayLeases returns the relay lease rows by name, expired ones included
// (with Active false). See store.Admin.
func (s *Store) RelayLeases(ctx context.Context) ([]store.RelayLease, error) {
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT name, owner, expires_at FROM {p}relay_leases ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list relay leases: %w", s.explain(ctx, s.db, s.prefix+"relay_leases", err))
	}
	defer rows.Close()
	now := time.Now()
	var out []store.RelayLease
	for rows.Next() {
		var (
			l       store.RelayLease
			expires int64
		)
		if err := rows.Scan(&l.Name, &l.Holder, &expires); err != nil {
			return nil, fmt.Errorf("list relay leases: %w", err)
		}
		l.ExpiresAt = time.Unix(0, expires).UTC()
		l.Active = l.ExpiresAt.After(now)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list relay leases: %w", err)
	}
	return out, nil
}
