package app

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cqrskit/cqrskit/store/sqlite"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// TestMigrateSKUIndexIgnoresCase: migration 2 upper-cases the SKU index
// written by migration 1; of SKUs that differ only in case, the product
// created first (the smaller UUIDv7) keeps the reservation.
func TestMigrateSKUIndexIgnoresCase(t *testing.T) {
	for _, dialect := range []Dialect{SQLite, Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			var db *sql.DB
			if dialect == SQLite {
				store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Config{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { store.Close() })
				db = store.DB()
			} else {
				db = pgtest.New(t).DB()
			}
			p, err := migrationProvider(db, dialect, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 1); err != nil {
				t.Fatal(err)
			}
			const older, newer = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"
			for _, row := range [][2]string{{"cup-esp", newer}, {"CUP-ESP", older}, {"Mug-1", newer}, {"JUG", older}} {
				if _, err := db.ExecContext(ctx, `INSERT INTO sku_index (sku, product_id) VALUES ($1, $2)`, row[0], row[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := Migrate(ctx, db, dialect, nil); err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, `SELECT sku, product_id FROM sku_index ORDER BY sku`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got [][2]string
			for rows.Next() {
				var r [2]string
				if err := rows.Scan(&r[0], &r[1]); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			want := [][2]string{{"CUP-ESP", older}, {"JUG", older}, {"MUG-1", newer}}
			if !slices.Equal(got, want) {
				t.Fatalf("sku_index after the migration = %v, want %v", got, want)
			}
		})
	}
}
