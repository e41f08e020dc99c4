package main

import (
	"context"
	"time"

	"github.com/cqrskit/cqrskit/store/sqlite"
)

// sqliteBackend adapts a *sqlite.Store to backend.
type sqliteBackend struct {
	*sqlite.Store
	where string
}

func (b *sqliteBackend) String() string { return b.where }

func (b *sqliteBackend) MigrationStatus(ctx context.Context) ([]migration, error) {
	ms, err := b.Store.MigrationStatus(ctx)
	return convert(ms, func(m sqlite.Migration) migration { return migration(m) }), err
}

func (b *sqliteBackend) ListStreams(ctx context.Context, after string, limit int) ([]streamInfo, error) {
	ss, err := b.Store.ListStreams(ctx, after, limit)
	return convert(ss, func(s sqlite.StreamInfo) streamInfo { return streamInfo(s) }), err
}

func (b *sqliteBackend) ListCheckpoints(ctx context.Context) ([]checkpoint, error) {
	cs, err := b.Store.ListCheckpoints(ctx)
	return convert(cs, func(c sqlite.CheckpointInfo) checkpoint { return checkpoint(c) }), err
}

func (b *sqliteBackend) RelayLeases(ctx context.Context) ([]relayLease, error) {
	ls, err := b.Store.RelayLeases(ctx)
	now := time.Now()
	return convert(ls, func(l sqlite.RelayLease) relayLease {
		return relayLease{Holder: l.Owner, Active: l.ExpiresAt.After(now), Name: l.Name, ExpiresAt: l.ExpiresAt}
	}), err
}
