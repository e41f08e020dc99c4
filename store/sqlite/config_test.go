package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "cfg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	tests := []struct {
		name    string
		prefix  string
		wantErr bool
	}{
		{"zero value uses the default", "", false},
		{"letters and underscore", "app_", false},
		{"leading underscore", "_x", false},
		{"digits after the first", "a1_2", false},
		{"41 characters", "a" + strings.Repeat("b", 40), false},
		{"42 characters", "a" + strings.Repeat("b", 41), true},
		{"leading digit", "1app_", true},
		{"upper case", "App_", true},
		{"dash", "my-app_", true},
		{"injection", "x; DROP TABLE y; --", true},
		{"space", "a b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlite.New(db, sqlite.Config{TablePrefix: tt.prefix})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(TablePrefix %q) succeeded, want an error", tt.prefix)
				}
				if msg := err.Error(); !strings.Contains(msg, "TablePrefix") || !strings.Contains(msg, tt.prefix) {
					t.Errorf("error %q should name the field TablePrefix and the value %q", msg, tt.prefix)
				}
				_, sqlErr := sqlite.MigrationSQL(sqlite.Config{TablePrefix: tt.prefix})
				if sqlErr == nil {
					t.Errorf("MigrationSQL(TablePrefix %q) succeeded, want an error", tt.prefix)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(TablePrefix %q): %v", tt.prefix, err)
			}
		})
	}
}

func TestNewNilDB(t *testing.T) {
	t.Parallel()
	if _, err := sqlite.New(nil, sqlite.Config{}); err == nil {
		t.Fatal("New(nil) succeeded, want an error")
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := sqlite.Open(context.Background(), path, sqlite.Config{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestOpenCreatesParentDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "nested", "events.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	var mode string
	if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var fk int
	if err := s.DB().QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d, want 1", fk)
	}
}
