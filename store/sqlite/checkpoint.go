package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

var (
	_ projection.CheckpointStore = (*Store)(nil)
	_ projection.Counter         = (*Store)(nil)
)

// Checkpoint returns the projection's cursor in tx (the zero Cursor when it
// has none). It writes first, creating an empty checkpoint if there is
// none, so tx holds SQLite's write lock from here on even when it was not
// begun IMMEDIATE: a second runner of the projection waits until tx ends.
func (s *Store) Checkpoint(ctx context.Context, tx *sql.Tx, name string) (event.Cursor, error) {
	if tx == nil || name == "" {
		return event.Cursor{}, fmt.Errorf("checkpoint: need a transaction and a projection name (name %q)", name)
	}
	table := s.prefix + "checkpoints"
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+
		" (name, tx_id, position, updated_at) VALUES (?, 0, 0, ?) ON CONFLICT (name) DO NOTHING",
		name, time.Now().UnixNano()); err != nil {
		return event.Cursor{}, fmt.Errorf("checkpoint of %s: %w", name, s.explain(ctx, tx, table, err))
	}
	var (
		c    event.Cursor
		txID int64
	)
	if err := tx.QueryRowContext(ctx, "SELECT tx_id, position FROM "+table+" WHERE name = ?", name).
		Scan(&txID, &c.Position); err != nil {
		return event.Cursor{}, fmt.Errorf("checkpoint of %s: %w", name, s.explain(ctx, tx, table, err))
	}
	c.TxID = uint64(txID)
	return c, nil
}

// SaveCheckpoint stores the projection's cursor in tx.
func (s *Store) SaveCheckpoint(ctx context.Context, tx *sql.Tx, name string, c event.Cursor) error {
	if tx == nil || name == "" {
		return fmt.Errorf("save checkpoint: need a transaction and a projection name (name %q)", name)
	}
	table := s.prefix + "checkpoints"
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+
		" (name, tx_id, position, updated_at) VALUES (?, ?, ?, ?)"+
		" ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position, updated_at = excluded.updated_at",
		name, int64(c.TxID), c.Position, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("save checkpoint of %s at position %d: %w", name, c.Position, s.explain(ctx, tx, table, err))
	}
	return nil
}

// DeleteCheckpoint removes the projection's checkpoint in tx.
func (s *Store) DeleteCheckpoint(ctx context.Context, tx *sql.Tx, name string) error {
	if tx == nil || name == "" {
		return fmt.Errorf("delete checkpoint: need a transaction and a projection name (name %q)", name)
	}
	table := s.prefix + "checkpoints"
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE name = ?", name); err != nil {
		return fmt.Errorf("delete checkpoint of %s: %w", name, s.explain(ctx, tx, table, err))
	}
	return nil
}

// CountEvents counts the events after the cursor in the global log.
func (s *Store) CountEvents(ctx context.Context, after event.Cursor) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+s.q.eventsTable+" WHERE position > ?", after.Position).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events after position %d: %w", after.Position, s.explain(ctx, s.db, s.q.eventsTable, err))
	}
	return n, nil
}
