package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
)

// saveSnapshotSQL keeps the snapshot of the highest version: an older
// snapshot, saved late by a slow writer, does not replace a newer one.
const saveSnapshotSQL = `INSERT INTO {snapshots} AS sn (stream_id, version, schema_version, data, created_at)
VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now()))
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version,
	data = EXCLUDED.data, created_at = EXCLUDED.created_at
WHERE sn.version <= EXCLUDED.version`

// SaveSnapshot stores snap unless a snapshot of a higher version is
// already stored for its stream. A zero CreatedAt means now. See
// es.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := checkSnapshot(snap); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q.saveSnapshot, snapshotArgs(snap)...)
	return wrap("save snapshot of stream "+snap.StreamID+" at version "+strconv.FormatInt(snap.Version, 10), err)
}

// SaveSnapshotTx is SaveSnapshot inside tx, so the snapshot commits or
// rolls back with the caller's writes. It runs in a savepoint: a failure
// leaves tx usable. See es.SnapshotTxStore.
func (s *Store) SaveSnapshotTx(ctx context.Context, tx *sql.Tx, snap es.Snapshot) error {
	if tx == nil {
		return &event.ValidationError{Field: "tx", Value: "nil", Reason: "SaveSnapshotTx needs a transaction; use SaveSnapshot without one"}
	}
	if err := checkSnapshot(snap); err != nil {
		return err
	}
	op := "save snapshot of stream " + snap.StreamID + " at version " + strconv.FormatInt(snap.Version, 10)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT cqrskit_snapshot"); err != nil {
		return wrap(op, err)
	}
	if _, err := tx.ExecContext(ctx, s.q.saveSnapshot, snapshotArgs(snap)...); err != nil {
		// Cleanup must run even when ctx is done; the caller still owns tx.
		_, _ = tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT cqrskit_snapshot")
		return wrap(op, err)
	}
	_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT cqrskit_snapshot")
	return wrap(op, err)
}

func snapshotArgs(snap es.Snapshot) []any {
	var createdAt *time.Time
	if !snap.CreatedAt.IsZero() {
		createdAt = &snap.CreatedAt
	}
	return []any{snap.StreamID, snap.Version, snap.SchemaVersion, snap.Data, createdAt}
}

func checkSnapshot(snap es.Snapshot) error {
	switch {
	case snap.StreamID == "":
		return &event.ValidationError{Field: "snapshot StreamID", Value: "", Reason: "stream ID must not be empty"}
	case snap.Version < 1:
		return &event.ValidationError{Field: "snapshot Version", Value: strconv.FormatInt(snap.Version, 10), Reason: "versions start at 1"}
	case snap.Data == nil:
		return &event.ValidationError{Field: "snapshot Data", Value: "nil", Reason: "state must not be nil"}
	}
	return nil
}

// LoadSnapshot returns the stream's snapshot; ok is false when there is
// none. See es.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, bool, error) {
	snap := es.Snapshot{StreamID: stream}
	err := s.db.QueryRowContext(ctx, s.q.loadSnapshot, stream).Scan(&snap.Version, &snap.SchemaVersion, &snap.Data, &snap.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return es.Snapshot{}, false, nil
	}
	if err != nil {
		return es.Snapshot{}, false, wrap("load snapshot of stream "+stream, err)
	}
	snap.CreatedAt = snap.CreatedAt.UTC()
	return snap, true, nil
}
