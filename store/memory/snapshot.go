package memory

import (
	"context"
	"errors"

	"github.com/cqrskit/cqrskit/es"
)

// SaveSnapshot implements es.SnapshotStore. A snapshot replaces the stored
// one unless that one has a higher version; one of the same version is
// replaced, so a snapshot of a new schema version takes over at once.
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if snap.StreamID == "" {
		return errors.New("memory: save snapshot: stream ID must not be empty")
	}
	if snap.Version < 1 {
		return errors.New("memory: save snapshot: version must be >= 1")
	}
	snap.Data = clone(snap.Data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.snapshots[snap.StreamID]; ok && prev.Version > snap.Version {
		return nil
	}
	s.snapshots[snap.StreamID] = snap
	return nil
}

// LoadSnapshot implements es.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, false, err
	}
	s.mu.RLock()
	snap, ok := s.snapshots[stream]
	s.mu.RUnlock()
	snap.Data = clone(snap.Data)
	return snap, ok, nil
}
