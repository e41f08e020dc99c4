package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing/fstest"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
)

// Store is an event store, snapshot store and outbox in one SQLite
// database. It is safe for concurrent use.
type Store struct {
	db        *sql.DB
	ownsDB    bool
	prefix    string
	log       *slog.Logger
	q         queries
	stmtCache stmtCache

	migrations fstest.MapFS

	// writeSem serializes the store's own write transactions. SQLite admits
	// one writer at a time; waiting here, in order and cancellable, is
	// fairer and faster than every writer sleeping in SQLite's busy
	// handler.
	writeSem chan struct{}

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

var (
	_ event.TxStore      = (*Store)(nil)
	_ es.SnapshotStore   = (*Store)(nil)
	_ es.SnapshotTxStore = (*Store)(nil)
	_ outbox.Store       = (*Store)(nil)
	_ outbox.Notifier    = (*Store)(nil)
)

// busyTimeoutMS bounds how long a statement waits for another connection's
// write lock (a transaction begun by the caller for AppendTx, another
// process). The caller's context can end the wait sooner.
const busyTimeoutMS = 30_000

// Open opens (creating if needed) the SQLite database file at path with the
// settings the store relies on: WAL journal, synchronous=NORMAL, foreign
// keys, a 30 s busy timeout, and BEGIN IMMEDIATE for every transaction so
// concurrent writers queue for the write lock instead of failing with
// SQLITE_BUSY. The parent directory is created if missing. Close closes the
// database. Call Migrate before first use.
//
// In-memory databases are not supported: each pooled connection would see
// its own empty database. Use a file in a temporary directory instead.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite open %q: need a plain file path (no \"file:\" URI, query or :memory:)", path)
	}
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err // before creating anything
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	// Keep connections open: each new one re-runs the pragmas.
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite open %s: %w", path, err)
	}
	s, err := New(db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.ownsDB = true
	return s, nil
}

// New returns a store on a database the caller opened with the "sqlite"
// driver (modernc.org/sqlite). The caller keeps ownership: Close does not
// close db.
//
// Open db as Open does: WAL, a busy timeout, and _txlock=immediate in the
// DSN. Without BEGIN IMMEDIATE a transaction passed to AppendTx reads
// before it writes, and SQLite fails it with SQLITE_BUSY when another
// connection wrote in between.
func New(db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlite: New needs a non-nil *sql.DB")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	files, err := renderMigrations(cfg.TablePrefix)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return &Store{
		db:         db,
		prefix:     cfg.TablePrefix,
		log:        cfg.Logger,
		q:          newQueries(cfg.TablePrefix),
		migrations: files,
		writeSem:   make(chan struct{}, 1),
		subs:       map[chan struct{}]struct{}{},
	}, nil
}

// DB returns the store's database, for callers that begin the transaction
// passed to AppendTx.
func (s *Store) DB() *sql.DB { return s.db }

// Close releases the store's prepared statements and closes the database
// if Open opened it.
func (s *Store) Close() error {
	err := s.closeStmts()
	if s.ownsDB {
		err = errors.Join(err, s.db.Close())
	}
	return err
}

// Listen returns a channel that receives a value after appends commit, until
// ctx ends: the outbox relay's wake-up (outbox.Notifier), so it need not
// poll. Signals coalesce: a receiver that falls behind finds one pending
// value, not one per append, and writers never block. Each call subscribes
// anew, so an active relay and its standbys each get their own wake-ups.
//
// Append signals after its commit. AppendTx cannot know when the caller
// commits: call Committed after committing that transaction.
func (s *Store) Listen(ctx context.Context) (<-chan struct{}, error) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[c] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
	})
	return c, nil
}

// Signal wakes every Listen subscriber. Call it after committing a
// transaction in which AppendTx wrote events; Append calls it itself.
func (s *Store) Signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.subs {
		select {
		case c <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// lockWrite waits for the store's write turn. Release with unlockWrite.
func (s *Store) lockWrite(ctx context.Context) error {
	select {
	case s.writeSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWrite() { <-s.writeSem }

// execWrite runs one write statement in its turn of the store's write
// queue and returns the rows affected.
func (s *Store) execWrite(ctx context.Context, query string, args ...any) (int64, error) {
	if err := s.lockWrite(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWrite()
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
