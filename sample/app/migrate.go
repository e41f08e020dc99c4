package app

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect names the SQL database the sample's tables live in.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// versionTable is goose's record of the sample's applied migrations.
const versionTable = "sample_schema_version"

// Migrate creates or upgrades the sample's tables (sku_index, products,
// stock_alerts, stats_products) with goose. It is safe on every start; on
// PostgreSQL processes starting together take turns under an advisory lock.
func Migrate(ctx context.Context, db *sql.DB, dialect Dialect, log *slog.Logger) error {
	p, err := migrationProvider(db, dialect, log)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sample migrate: %w", err)
	}
	return nil
}

func migrationProvider(db *sql.DB, dialect Dialect, log *slog.Logger) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(versionTable),
		goose.WithDisableGlobalRegistry(true),
	}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	var gd goose.Dialect
	switch dialect {
	case SQLite:
		gd = goose.DialectSQLite3
	case Postgres:
		gd = goose.DialectPostgres
		h := fnv.New64a()
		h.Write([]byte("cqrskit.sample.migrate"))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 600))
		if err != nil {
			return nil, fmt.Errorf("sample migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		return nil, fmt.Errorf("sample migrate: unknown dialect %q", dialect)
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("sample migrate: %w", err)
	}
	return p, nil
}
