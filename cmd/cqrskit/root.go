package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// Environment variables read for flags not given.
const (
	envDB          = "CQRSKIT_DB"
	envSchema      = "CQRSKIT_SCHEMA"
	envTablePrefix = "CQRSKIT_TABLE_PREFIX"
)

// usageError is a mistake in the command line: it exits with exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app holds what every command shares: the global flags and the outputs.
type app struct {
	stdout, stderr io.Writer

	dbURL   string
	schema  string
	prefix  string
	output  string
	verbose bool
}

// run executes the command line args and returns the exit code. Results go
// to stdout; errors, progress and hints to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "cqrskit: %s\n", oneLine(err))
	if errors.As(err, new(usageError)) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitError
}

// oneLine joins a multi-line error (errors.Join) into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cqrskit",
		Short: "Inspect and operate a cqrskit event store",
		Long: `cqrskit inspects and operates a cqrskit event store in PostgreSQL or SQLite:
migrations, streams, the global log, the outbox, dead letters and projections.

The database is given with --db or the CQRSKIT_DB environment variable:
  postgres://user:password@host:5432/dbname?sslmode=disable
  sqlite://path/to/events.db   (sqlite:///absolute/path.db)

Exit codes: 0 success, 1 the command failed, 2 the command line is wrong.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              groupArgs,
		RunE:              groupRun,
		PersistentPreRunE: a.checkGlobals,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	f := root.PersistentFlags()
	f.StringVar(&a.dbURL, "db", "", "database URL: postgres://... or sqlite://PATH (default $"+envDB+")")
	f.StringVar(&a.schema, "schema", "", "PostgreSQL schema of the cqrskit tables (default $"+envSchema+", else the search_path)")
	f.StringVar(&a.prefix, "table-prefix", "", "prefix of the cqrskit tables (default $"+envTablePrefix+", else \"cqrs_\")")
	f.StringVarP(&a.output, "output", "o", "text", "output format of listings: text or json")
	f.BoolVarP(&a.verbose, "verbose", "v", false, "log the stores' diagnostics (migrations) to stderr")

	root.AddCommand(
		a.migrateCommand(),
		a.streamsCommand(),
		a.eventsCommand(),
		a.outboxCommand(),
		a.deadLettersCommand(),
		a.projectionsCommand(),
		a.doctorCommand(),
	)
	return root
}

// checkGlobals validates the global flags and fills them from the
// environment.
func (a *app) checkGlobals(*cobra.Command, []string) error {
	switch a.output {
	case "text", "json":
	default:
		return usagef("--output %q: want text or json", a.output)
	}
	if a.dbURL == "" {
		a.dbURL = os.Getenv(envDB)
	}
	if a.schema == "" {
		a.schema = os.Getenv(envSchema)
	}
	if a.prefix == "" {
		a.prefix = os.Getenv(envTablePrefix)
	}
	return nil
}

func (a *app) json() bool { return a.output == "json" }

// group returns a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: groupArgs, RunE: groupRun}
	c.AddCommand(subs...)
	return c
}

// groupArgs rejects an unknown subcommand as a usage error, with
// suggestions.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2 // cobra's default, applied only on its own path
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageError{errors.New(msg)}
}

// groupRun runs when a group is given without a subcommand.
func groupRun(cmd *cobra.Command, _ []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usagef("missing command after %q; choose one of: %s", cmd.CommandPath(), strings.Join(names, ", "))
}

// usageArgs wraps a cobra argument check so that its error is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
