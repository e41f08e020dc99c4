package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cqrskit/cqrskit/store/postgres"
)

// pgBackend adapts a *postgres.Store to backend.
type pgBackend struct {
	*postgres.Store
	db    *sql.DB
	where string
}

func (b *pgBackend) String() string { return b.where }

func (b *pgBackend) Close() error { return b.db.Close() }

func (b *pgBackend) MigrationStatus(ctx context.Context) ([]migration, error) {
	ms, err := b.Store.MigrationStatus(ctx)
	return convert(ms, func(m postgres.Migration) migration { return migration(m) }), err
}

func (b *pgBackend) ListStreams(ctx context.Context, after string, limit int) ([]streamInfo, error) {
	ss, err := b.Store.ListStreams(ctx, after, limit)
	return convert(ss, func(s postgres.StreamInfo) streamInfo { return streamInfo(s) }), err
}

func (b *pgBackend) ListCheckpoints(ctx context.Context) ([]checkpoint, error) {
	cs, err := b.Store.ListCheckpoints(ctx)
	return convert(cs, func(c postgres.CheckpointInfo) checkpoint { return checkpoint(c) }), err
}

func (b *pgBackend) RelayLeases(ctx context.Context) ([]relayLease, error) {
	h, held, err := b.Store.LeaseHolder(ctx)
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
	return []relayLease{{
		Holder: holder, Active: true, PID: h.PID, Application: h.ApplicationName,
		ClientAddr: h.ClientAddr, User: h.User, SessionStart: h.SessionStart,
	}}, nil
}

// convert maps a slice.
func convert[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
