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
		return fmt.Errorf("save snapshot of stream %s: %w", snap.StreamID, verr)
	}
	created := snap.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	if err := s.lockWrite(ctx); err != nil {
		return fmt.Errorf("save snapshot of stream %s: %w", snap.StreamID, err)
	}
	defer s.unlockWrite()
	_, err := s.db.ExecContext(ctx, s.q.saveSnapshot, snap.StreamID, snap.Version, snap.SchemaVersion,
		snap.Data, created.UnixNano())
	if err != nil {
		return fmt.Errorf("save snapshot of stream %s at version %d: %w", snap.StreamID, snap.Version,
			s.explain(ctx, s.db, s.q.snapshotsTable, err))
	}
	return nil
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
