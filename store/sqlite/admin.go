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
)

// This file holds read-mostly queries for operators: the cqrskit CLI lists
// streams, migrations and checkpoints with them. None is on a hot path.

// StreamInfo describes one stream, as ListStreams returns it.
type StreamInfo struct {
	StreamID   string
	StreamType string
	// Version is the stream's current version: its number of events.
	Version int64
	// UpdatedAt is when the stream's last event was recorded, in UTC.
	UpdatedAt time.Time
}

// ListStreams returns up to limit streams whose ID sorts after after, in
// stream ID order (byte order); pass the last ID returned to read the next
// page, "" for the first.
func (s *Store) ListStreams(ctx context.Context, after string, limit int) ([]StreamInfo, error) {
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
	var out []StreamInfo
	for rows.Next() {
		var (
			si      StreamInfo
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

// Migration is one of the store's embedded migrations and whether the
// database has it.
type Migration struct {
	// Version is the migration's number, from its file name.
	Version int64
	// Name is the migration's file name, for example "00001_schema.sql".
	Name string
	// Applied reports whether Migrate recorded the migration as applied.
	Applied bool
	// AppliedAt is when it was recorded (goose stores whole seconds, UTC);
	// zero when not applied.
	AppliedAt time.Time
}

// MigrationStatus returns the embedded migrations in order, each with
// whether the database recorded it in goose's version table. It only
// reads: unlike goose's own status it does not create the version table.
//
// Schema applied by hand from MigrationSQL is not recorded: its migrations
// show as pending, and TablesExist reports the tables.
func (s *Store) MigrationStatus(ctx context.Context) ([]Migration, error) {
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
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		at, ok := applied[v]
		out = append(out, Migration{Version: v, Name: name, Applied: ok, AppliedAt: at})
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

// CheckpointInfo is one projection's stored checkpoint.
type CheckpointInfo struct {
	Name string
	// Cursor is the position after the last event the projection applied.
	Cursor event.Cursor
	// UpdatedAt is when the checkpoint was last saved, in UTC.
	UpdatedAt time.Time
}

// ListCheckpoints returns every projection checkpoint, by name.
func (s *Store) ListCheckpoints(ctx context.Context) ([]CheckpointInfo, error) {
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT name, tx_id, position, updated_at FROM {p}checkpoints ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", s.explain(ctx, s.db, s.prefix+"checkpoints", err))
	}
	defer rows.Close()
	var out []CheckpointInfo
	for rows.Next() {
		var (
			c             CheckpointInfo
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

// RelayLease is a row of the relay leases (see Leader).
type RelayLease struct {
	// Name names the lease, "outbox" unless LeaderConfig.Name says else.
	Name string
	// Owner identifies the relay that took it (LeaderConfig.Owner,
	// host:pid:random by default).
	Owner string
	// ExpiresAt is when the lease lapses unless the owner keeps it, in
	// UTC. A lease past it belongs to a relay that stopped keeping it
	// (crashed, or paused); a standby takes it over. Released leases are
	// deleted.
	ExpiresAt time.Time
}

// RelayLeases returns the relay lease rows by name, expired ones included.
func (s *Store) RelayLeases(ctx context.Context) ([]RelayLease, error) {
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT name, owner, expires_at FROM {p}relay_leases ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list relay leases: %w", s.explain(ctx, s.db, s.prefix+"relay_leases", err))
	}
	defer rows.Close()
	var out []RelayLease
	for rows.Next() {
		var (
			l       RelayLease
			expires int64
		)
		if err := rows.Scan(&l.Name, &l.Owner, &expires); err != nil {
			return nil, fmt.Errorf("list relay leases: %w", err)
		}
		l.ExpiresAt = time.Unix(0, expires).UTC()
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list relay leases: %w", err)
	}
	return out, nil
}
