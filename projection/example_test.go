package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// A projection counting products per category, built from the log.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cqrskit-projection-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := store.DB().Exec(`CREATE TABLE categories (name TEXT PRIMARY KEY, products INTEGER NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	// History written before the projection existed.
	for i, category := range []string{"pens", "paper", "pens"} {
		_, err := store.Append(ctx, fmt.Sprint("product-", i), event.NoStream, []event.Event{{
			StreamType: "product", Type: "product.created", Data: fmt.Appendf(nil, `{"category":%q}`, category),
		}})
		if err != nil {
			log.Fatal(err)
		}
	}

	p, err := projection.New(projection.Config{
		Name:        "categories",
		Events:      store,
		Checkpoints: store,
		Apply: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO categories (name, products) VALUES (json_extract($1, '$.category'), 1)
				ON CONFLICT (name) DO UPDATE SET products = products + 1`, string(e.Data))
			return err
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	// Build it over the whole history, then keep it current with p.Run(ctx).
	err = p.Rebuild(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM categories`)
		return err
	}, func(pr projection.Progress) {
		fmt.Printf("rebuilt %d of %d events\n", pr.Done, pr.Total)
	})
	if err != nil {
		log.Fatal(err)
	}

	rows, err := store.DB().Query(`SELECT name, products FROM categories ORDER BY name`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, n)
	}

	_, err = store.Append(ctx, "product-3", event.NoStream, []event.Event{{
		StreamType: "product", Type: "product.created", Data: []byte(`{"category":"ink"}`),
	}})
	if err != nil {
		log.Fatal(err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("behind by", st.Lag)
	n, err := p.CatchUp(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("caught up", n)
	// Output:
	// rebuilt 0 of 3 events
	// rebuilt 3 of 3 events
	// paper 1
	// pens 2
	// behind by 1
	// caught up 1
}
