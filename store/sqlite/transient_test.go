package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cqrskit/cqrskit/store/sqlite"
)

// A real SQLITE_BUSY (another connection holds the write lock and the busy
// timeout is 0) is transient; a constraint violation is not.
func TestIsTransient(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(ctx, path, sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	_, busy := other.ExecContext(ctx, `INSERT INTO t VALUES ('b')`)
	if busy == nil {
		t.Fatal("a second writer got the lock; want SQLITE_BUSY")
	}
	if !s.IsTransient(fmt.Errorf("write read model: %w", busy)) {
		t.Errorf("IsTransient(%v) = false, want true", busy)
	}
	_, dup := tx.ExecContext(ctx, `INSERT INTO t VALUES ('a')`)
	if dup == nil || s.IsTransient(dup) {
		t.Errorf("IsTransient(%v) = true, want false (a constraint violation)", dup)
	}
	if s.IsTransient(errors.New("boom")) || s.IsTransient(nil) {
		t.Error("IsTransient of a plain error or nil = true, want false")
	}
}
