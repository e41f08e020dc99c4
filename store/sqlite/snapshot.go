package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
)

// SaveSnapshot stores snap as the stream's snapshot unless one of a higher
// version is already stored; then it does nothing. A zero CreatedAt is set
// to now.
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	created, err := checkSnapshot(snap)
	if err != nil {
		return err
	}
	if err := s.lockWrite(ctx); err != nil {
		return fmt.Errorf("save snapshot of stream %s: %w", snap.StreamID, err)
	}
	defer s.unlockWrite()
	return s.saveSnapshot(ctx, s.db, snap, created)
}

// SaveSnapshotTx is SaveSnapshot inside tx, a transaction on DB(): the
// snapshot commits or rolls back with the caller's writes, and needs no
// write lock of its own (the caller's transaction holds SQLite's). A failed
// SaveSnapshotTx leaves tx usable. See es.SnapshotTxStore.
func (s *Store) SaveSnapshotTx(ctx context.Context, tx *sql.Tx, snap es.Snapshot) error {
	if tx == nil {
		return fmt.Errorf("save snapshot of stream %s: %w", snap.StreamID,
			&event.ValidationError{Field: "tx", Value: "nil", Reason: "SaveSnapshotTx needs a transaction; use SaveSnapshot without one"})
	}
	created, err := checkSnapshot(snap)
	if err != nil {
		return err
	}
	// A failed statement undoes only itself in SQLite: tx stays usable.
	return s.saveSnapshot(ctx, tx, snap, created)
}

func (s *Store) saveSnapshot(ctx context.Context, q querier, snap es.Snapshot, created time.Time) error {
	_, err := q.ExecContext(ctx, s.q.saveSnapshot, snap.StreamID, snap.Version, snap.SchemaVersion,
		snap.Data, created.UnixNano())
	if err != nil {
		return fmt.Errorf("save snapshot of stream %s at version %d: %w", snap.StreamID, snap.Version,
			s.explain(ctx, q, s.q.snapshotsTable, err))
	}
	return nil
}

// checkSnapshot validates snap and returns its creation time (now when
// zero).
func checkSnapshot(snap es.Snapshot) (time.Time, error) {
	var verr error
	switch {
	case snap.StreamID == "":
		verr = &event.ValidationError{Field: "snapshot StreamID", Value: "", Reason: "stream ID must not be empty"}
	case snap.Version < 1:
		verr = &event.ValidationError{Field: "snapshot Version", Value: strconv.FormatInt(snap.Version, 10), Reason: "versions start at 1"}
	case snap.Data == nil:
		verr = &event.ValidationError{Field: "snapshot Data", Value: "nil", Reason: "state must not be nil"}
	}
	if verr != nil {
		return time.Time{}, fmt.Errorf("save snapshot of stream %s: %w", snap.StreamID, verr)
	}
	if snap.CreatedAt.IsZero() {
		return time.Now(), nil
	}
	return snap.CreatedAt, nil
}

// LoadSnapshot returns the stream's snapshot; ok is false when there is
// none.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, bool, error) {
	snap := es.Snapshot{StreamID: stream}
	var created int64
	err := s.db.QueryRowContext(ctx, s.q.loadSnapshot, stream).
		Scan(&snap.Version, &snap.SchemaVersion, &snap.Data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return es.Snapshot{}, false, nil
	}
	if err != nil {
		return es.Snapshot{}, false, fmt.Errorf("load snapshot of stream %s: %w", stream,
			s.explain(ctx, s.db, s.q.snapshotsTable, err))
	}
	if snap.Data == nil {
		snap.Data = []byte{}
	}
	snap.CreatedAt = time.Unix(0, created).UTC()
	return snap, true, nil
}
