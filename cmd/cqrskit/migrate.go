package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/store"

	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// migrationReport is the JSON output of migrate up and migrate status.
type migrationReport struct {
	Database    string            `json:"database"`
	TablesExist bool              `json:"tables_exist"`
	Pending     int               `json:"pending"`
	Applied     []string          `json:"applied_now,omitempty"` // migrate up only
	Migrations  []store.Migration `json:"migrations"`
}

func (a *app) migrateCommand() *cobra.Command {
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply the migrations the database lacks (creates a SQLite file if missing)",
		Long: `Apply the embedded migrations the database lacks, in order. Applied
migrations are skipped, so running it again is harmless. PostgreSQL takes an
advisory lock, so services migrating at start-up and the CLI take turns. With
--schema the schema is created if needed.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.migrateUp(cmd.Context()) },
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether the database has them",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.migrateStatus(cmd.Context()) },
	}
	var dialect string
	sql := &cobra.Command{
		Use:   "sql",
		Short: "Print the schema as SQL, for your own migration tool",
		Long: `Print the schema as plain SQL: every migration's "up" part, in order, with
--schema and --table-prefix applied. Every statement is idempotent, and
'cqrskit migrate up' can take over later. The dialect comes from --db (no
connection is made) or --dialect.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error { return a.migrateSQL(dialect) },
	}
	sql.Flags().StringVar(&dialect, "dialect", "", "postgres or sqlite (default: from --db)")
	return group("migrate", "Create, inspect or print the cqrskit schema", up, status, sql, a.rebaseCommand())
}

func (a *app) migrateUp(ctx context.Context) error {
	return a.withBackend(ctx, create, func(b backend) error {
		before, err := b.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		if err := b.Migrate(ctx); err != nil {
			return err
		}
		r, err := a.migrationReport(ctx, b)
		if err != nil {
			return err
		}
		for i, m := range r.Migrations {
			if m.Applied && !before[i].Applied {
				r.Applied = append(r.Applied, m.Name)
			}
		}
		if a.json() {
			return writeJSON(a.stdout, r)
		}
		for _, name := range r.Applied {
			fmt.Fprintf(a.stdout, "applied %s\n", name)
		}
		if len(r.Applied) == 0 {
			fmt.Fprintf(a.stdout, "%s is up to date (%d migrations)\n", b, len(r.Migrations))
		} else {
			fmt.Fprintf(a.stdout, "%s is up to date\n", b)
		}
		return nil
	})
}

func (a *app) migrationReport(ctx context.Context, b backend) (migrationReport, error) {
	ms, err := b.MigrationStatus(ctx)
	if err != nil {
		return migrationReport{}, err
	}
	exists, err := b.TablesExist(ctx)
	if err != nil {
		return migrationReport{}, err
	}
	r := migrationReport{Database: b.String(), TablesExist: exists, Migrations: ms}
	for _, m := range ms {
		if !m.Applied {
			r.Pending++
		}
	}
	return r, nil
}

func (a *app) migrateStatus(ctx context.Context) error {
	return a.withBackend(ctx, mayBeEmpty, func(b backend) error {
		r, err := a.migrationReport(ctx, b)
		if err != nil {
			return err
		}
		if a.json() {
			return writeJSON(a.stdout, r)
		}
		tw := newTable(a.stdout)
		row(tw, "VERSION", "NAME", "STATE", "APPLIED AT")
		for _, m := range r.Migrations {
			state := "pending"
			if m.Applied {
				state = "applied"
			}
			row(tw, m.Version, m.Name, state, formatTime(m.AppliedAt))
		}
		tw.Flush()
		switch {
		case r.Pending == 0:
			fmt.Fprintf(a.stdout, "%s is up to date\n", b)
		case r.TablesExist:
			fmt.Fprintf(a.stdout, "%d pending; the tables exist (applied by hand?): run `cqrskit migrate up` to record them\n", r.Pending)
		default:
			fmt.Fprintf(a.stdout, "%d pending: run `cqrskit migrate up`\n", r.Pending)
		}
		return nil
	})
}

func (a *app) migrateSQL(dialect string) error {
	kind := map[string]dbKind{"postgres": kindPostgres, "postgresql": kindPostgres, "sqlite": kindSQLite}[dialect]
	switch {
	case dialect != "" && kind == 0:
		return usagef("--dialect %q: want postgres or sqlite", dialect)
	case kind == kindSQLite && a.schema != "":
		return usagef("--schema applies to PostgreSQL only; SQLite tables are named by --table-prefix")
	case kind == 0:
		t, err := a.target()
		if err != nil {
			return err
		}
		kind = t.kind
	}
	var (
		text string
		err  error
	)
	if kind == kindPostgres {
		text, err = postgres.MigrationSQL(postgres.Config{Schema: a.schema, TablePrefix: a.prefix})
	} else {
		text, err = sqlite.MigrationSQL(sqlite.Config{TablePrefix: a.prefix})
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(a.stdout, text)
	return err
}
