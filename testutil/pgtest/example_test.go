package pgtest_test

import (
	"fmt"

	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// New gives the test a database of its own, empty and dropped at cleanup.
// In a test, pass its *testing.T: pg := pgtest.New(t). Like the tests, the
// example fails when no PostgreSQL is available.
func ExampleNew() {
	t := exampletb.New("ExampleNew")
	defer t.Done()

	pg := pgtest.New(t)
	db := pg.DB()
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE products (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO products VALUES ('product-42')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM products`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var current string
	if err := db.QueryRowContext(t.Context(), `SELECT current_database()`).Scan(&current); err != nil {
		t.Fatal(err)
	}
	fmt.Println(n, "product; own database:", current == pg.Name)
	// Output:
	// 1 product; own database: true
}
