package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

var (
	_ projection.CheckpointStore = (*Store)(nil)
	_ projection.Counter         = (*Store)(nil)
)

// checkpointQueries is the SQL of the projection.CheckpointStore and
// projection.Counter methods.
type checkpointQueries struct {
	lock, create, save, del string
	countEvents             string
}

// countEventsSQL counts what ReadAll would return after the cursor if
// asked for everything: the rows of globalReadWhere (read.go).
const countEventsSQL = `SELECT count(*)
FROM {events}
WHERE ` + globalReadWhere

func newCheckpointQueries(cfg Config) checkpointQueries {
	r := tableReplacer(cfg, "checkpoints", "events")
	return checkpointQueries{
		lock:   r.Replace(`SELECT tx_id, position FROM {checkpoints} WHERE name = $1 FOR UPDATE`),
		create: r.Replace(`INSERT INTO {checkpoints} (name) VALUES ($1) ON CONFLICT DO NOTHING`),
		save: r.Replace(`INSERT INTO {checkpoints} (name, tx_id, position, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`),
		del:         r.Replace(`DELETE FROM {checkpoints} WHERE name = $1`),
		countEvents: r.Replace(countEventsSQL),
	}
}

// Checkpoint returns the projection's cursor, the zero Cursor when it has
// none, and locks its row (SELECT ... FOR UPDATE) until tx ends, so a
// second runner of the same projection waits here. A missing row is
// created first (with the zero cursor) so that there is a row to lock; it
// stays if tx commits. See projection.CheckpointStore.
//
// tx should be READ COMMITTED, PostgreSQL's default: under REPEATABLE READ
// or SERIALIZABLE, a checkpoint changed by a runner that committed while tx
// waited fails with a serialization error.
func (s *Store) Checkpoint(ctx context.Context, tx *sql.Tx, name string) (event.Cursor, error) {
	op := "read checkpoint " + strconv.Quote(name)
	if tx == nil || name == "" {
		return event.Cursor{}, errors.New(op + ": need a transaction and a projection name")
	}
	// Usually the row exists and one statement does. Otherwise create it
	// and lock what is there; a runner deleting it concurrently (a
	// rebuild) can make that miss, hence a few tries.
	for range 3 {
		var txID, pos int64
		err := tx.QueryRowContext(ctx, s.q.checkpoint.lock, name).Scan(&txID, &pos)
		if err == nil {
			return event.Cursor{TxID: uint64(txID), Position: pos}, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return event.Cursor{}, wrap(op, err)
		}
		if _, err := tx.ExecContext(ctx, s.q.checkpoint.create, name); err != nil {
			return event.Cursor{}, wrap(op, err)
		}
	}
	return event.Cursor{}, fmt.Errorf("%s: its row was deleted each time it was created; is a rebuild of the projection running?", op)
}

// SaveCheckpoint stores the projection's cursor in tx. See
// projection.CheckpointStore.
func (s *Store) SaveCheckpoint(ctx context.Context, tx *sql.Tx, name string, c event.Cursor) error {
	op := fmt.Sprintf("save checkpoint %q at (tx %d, position %d)", name, c.TxID, c.Position)
	if tx == nil || name == "" {
		return errors.New(op + ": need a transaction and a projection name")
	}
	if err := validateCursor(c); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err := tx.ExecContext(ctx, s.q.checkpoint.save, name, int64(c.TxID), c.Position)
	return wrap(op, err)
}

// DeleteCheckpoint removes the projection's checkpoint in tx, so that it
// starts from the beginning of the log; a missing one is no error. See
// projection.CheckpointStore.
func (s *Store) DeleteCheckpoint(ctx context.Context, tx *sql.Tx, name string) error {
	op := "delete checkpoint " + strconv.Quote(name)
	if tx == nil || name == "" {
		return errors.New(op + ": need a transaction and a projection name")
	}
	_, err := tx.ExecContext(ctx, s.q.checkpoint.del, name)
	return wrap(op, err)
}

// CountEvents returns how many events ReadAll would return after the
// cursor if read to the end now: events of transactions below the gap-safe
// horizon, after the cursor in (TxID, Position) order. Events committing
// meanwhile are not counted. See projection.Counter.
func (s *Store) CountEvents(ctx context.Context, after event.Cursor) (int64, error) {
	op := fmt.Sprintf("count events after (tx %d, position %d)", after.TxID, after.Position)
	if err := validateCursor(after); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	var n int64
	err := s.db.QueryRowContext(ctx, s.q.checkpoint.countEvents, strconv.FormatUint(after.TxID, 10), after.Position).Scan(&n)
	if err != nil {
		return 0, wrap(op, err)
	}
	return n, nil
}

// validateCursor rejects cursors no PostgreSQL event can have.
func validateCursor(c event.Cursor) error {
	if c.TxID > math.MaxInt64 {
		return &event.ValidationError{Field: "TxID", Value: strconv.FormatUint(c.TxID, 10), Reason: "must fit in a bigint"}
	}
	if c.Position < 0 {
		return &event.ValidationError{Field: "Position", Value: strconv.FormatInt(c.Position, 10), Reason: "must not be negative"}
	}
	return nil
}
