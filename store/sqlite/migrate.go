package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/cqrskit/cqrskit/internal/sqlmigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable is goose's version table, after the prefix.
const versionTable = "schema_version"

// renderMigrations renders every embedded migration with prefix into an
// in-memory file system, in goose's file format.
func renderMigrations(prefix string) (fstest.MapFS, error) {
	return sqlmigrate.Render(migrationFiles, "migrations/*.sql", struct{ Prefix string }{prefix})
}

// MigrationSQL returns the schema for cfg's table prefix as plain SQL: the
// "up" part of every migration, in order, for users who apply migrations
// with their own tool. Every statement is CREATE ... IF NOT EXISTS, so
// running Migrate afterwards records the versions without failing.
func MigrationSQL(cfg Config) (string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	files, err := renderMigrations(cfg.TablePrefix)
	if err != nil {
		return "", err
	}
	return migrationSQL(files), nil
}

func migrationSQL(files fstest.MapFS) string {
	names, _ := fs.Glob(files, "*.sql") // sorted; the pattern is valid
	var b strings.Builder
	for _, name := range names {
		up, _, _ := strings.Cut(string(files[name].Data), "-- +goose Down")
		fmt.Fprintf(&b, "-- %s\n%s\n", name, strings.TrimSpace(up))
	}
	return b.String()
}

// MigrationSQL returns the store's schema as plain SQL; see the package
// function MigrationSQL.
func (s *Store) MigrationSQL() string { return migrationSQL(s.migrations) }

// Migrate creates or upgrades the store's tables with goose, recording the
// applied versions in the table <prefix>schema_version. It is safe to run
// on every start: applied migrations are skipped.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, s.migrations,
		goose.WithTableName(s.prefix+versionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log),
	)
	if err != nil {
		return fmt.Errorf("sqlite migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlite migrate: %w", err)
	}
	// Prepare the append statements now, while no transaction holds a
	// connection: AppendTx uses them only if prepared.
	if _, err := s.prepare(ctx); err != nil {
		return fmt.Errorf("sqlite migrate: prepare statements: %w", err)
	}
	for _, r := range results {
		s.log.LogAttrs(ctx, slog.LevelInfo, "sqlite: applied migration",
			slog.String("migration", path.Base(r.Source.Path)),
			slog.Int64("version", r.Source.Version),
			slog.Duration("duration", r.Duration))
	}
	return nil
}
