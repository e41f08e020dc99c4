package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Events are ordered by the id of the transaction that wrote them (see
// readAllSQL). A dump restored into another cluster (pg_dump/pg_restore,
// a logical copy) keeps the stored ids, but the new cluster's counter
// starts where its own history left it, usually far lower. New events
// would then sort before the old ones, behind every reader's cursor, and
// be skipped; appends to old streams would take the stream's old, high id
// (streams.last_tx_id) and stay above the horizon, unread, until the
// counter got there. Migrate refuses to start on such a database, and
// RebaseTxIDs renumbers the stored ids below the counter.

// ErrTxIDsAhead reports that the store holds transaction ids the
// database's cluster has not reached: its data was restored from another
// cluster. Errors wrapping it are *TxIDsAheadError.
var ErrTxIDsAhead = errors.New("stored transaction ids are ahead of this PostgreSQL cluster's transaction counter")

// ErrTxIDHeadroom reports that RebaseTxIDs cannot fit the stored
// transaction ids below the cluster's counter without advancing it.
var ErrTxIDHeadroom = errors.New("too few transaction ids below this cluster's counter to renumber the stored ones")

// TxIDsAheadError is the detail of ErrTxIDsAhead.
type TxIDsAheadError struct {
	// Table is the table holding the highest id (events or checkpoints).
	Table string
	// MaxStored is the highest stored transaction id.
	MaxStored uint64
	// Next is the id the cluster gives its next transaction.
	Next uint64
}

func (e *TxIDsAheadError) Error() string {
	return fmt.Sprintf("%s holds transaction id %d, but this PostgreSQL cluster's next transaction id is %d: "+
		"the data was restored from another cluster (pg_dump/pg_restore or a logical copy). "+
		"New events would sort before the stored ones and catch-up readers would skip them. "+
		"Stop every writer and reader of these tables, then run `cqrskit migrate rebase-txids` (Store.RebaseTxIDs), "+
		"which renumbers the stored ids below the counter in their order: %s",
		e.Table, e.MaxStored, e.Next, ErrTxIDsAhead)
}

// Is reports whether target is ErrTxIDsAhead.
func (e *TxIDsAheadError) Is(target error) bool { return target == ErrTxIDsAhead }

// maxTxIDSQL returns the highest stored transaction id of events (an
// index-only scan) and of checkpoints (a small table), and the cluster's
// next id. streams.last_tx_id is never above the events' highest.
const maxTxIDSQL = `SELECT coalesce((SELECT max(tx_id) FROM {events})::text, '0'),
	coalesce((SELECT max(tx_id) FROM {checkpoints})::text, '0'),
	pg_snapshot_xmax(pg_current_snapshot())::text`

// CheckTxIDs returns a *TxIDsAheadError (errors.Is ErrTxIDsAhead) if the
// store holds a transaction id at or above the cluster's counter, which
// happens only when the data came from another cluster. Migrate runs it;
// call it at start-up if the schema is applied some other way.
func (s *Store) CheckTxIDs(ctx context.Context) error {
	var events, checkpoints, next string
	if err := s.db.QueryRowContext(ctx, s.adminSQL(maxTxIDSQL)).Scan(&events, &checkpoints, &next); err != nil {
		return wrap("check transaction ids", err)
	}
	n, err := parseTxIDs(events, checkpoints, next)
	if err != nil {
		return fmt.Errorf("check transaction ids: %w", err)
	}
	switch {
	case n[0] >= n[2]:
		return &TxIDsAheadError{Table: s.Table("events"), MaxStored: n[0], Next: n[2]}
	case n[1] >= n[2]:
		return &TxIDsAheadError{Table: s.Table("checkpoints"), MaxStored: n[1], Next: n[2]}
	}
	return nil
}

func parseTxIDs(ss ...string) ([]uint64, error) {
	out := make([]uint64, len(ss))
	for i, s := range ss {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse transaction id %q: %w", s, err)
		}
		out[i] = v
	}
	return out, nil
}

// RebaseOptions tunes RebaseTxIDs.
type RebaseOptions struct {
	// Advance lets RebaseTxIDs consume transaction ids (about 50,000 a
	// second, in committed empty transactions) when the cluster's counter
	// is below the number of distinct stored ids, instead of returning
	// ErrTxIDHeadroom.
	Advance bool
}

// RebaseResult is what RebaseTxIDs did.
type RebaseResult struct {
	// Rebased is false when CheckTxIDs found nothing to do.
	Rebased bool
	// Transactions is the number of distinct stored transaction ids
	// renumbered; Events, Streams and Checkpoints the rows rewritten.
	Transactions, Events, Streams, Checkpoints int64
	// Advanced is how many transaction ids were consumed first.
	Advanced int64
	// From and To are the highest stored id before and after.
	From, To uint64
}

// horizonOnlySQL is the global reads' horizon (horizonSubquery, read.go)
// on its own: the smallest id of a transaction running in this database
// (or unplaceable), else the next id. Renumbered ids end below it, so that
// readers see them and every transaction that may still write here sorts
// after them.
const horizonOnlySQL = `SELECT (` + horizonSubquery + `)::text`

// rebaseMargin is how far below the counter the renumbered ids end,
// besides the transactions running during the rebase.
const rebaseMargin = 16

// RebaseTxIDs renumbers the stored transaction ids after a restore into
// another cluster (see ErrTxIDsAhead): the distinct ids of the events,
// in their order, become consecutive ids ending just below the oldest
// transaction running now, and streams.last_tx_id and every checkpoint
// follow, so each event keeps its place in the (tx_id, position) order,
// each checkpoint still names the same prefix of the log, and every event
// appended later sorts after all of them. Run it with writers and readers
// stopped: it locks the tables against writes, and a reader's in-memory
// cursor from before it is meaningless after it (a reader restarted from
// its checkpoint is fine). Events appended in the new cluster before it
// ran keep their own low ids and so sort before the restored ones.
//
// It does nothing when CheckTxIDs passes. It needs as many ids below the
// counter as there are distinct stored ids; with fewer it returns
// ErrTxIDHeadroom, unless opts.Advance lets it consume ids first. It
// rewrites every event row, in one transaction.
func (s *Store) RebaseTxIDs(ctx context.Context, opts RebaseOptions) (RebaseResult, error) {
	var ahead *TxIDsAheadError
	if err := s.CheckTxIDs(ctx); !errors.As(err, &ahead) {
		return RebaseResult{}, err // nil: nothing to do
	}
	res := RebaseResult{From: ahead.MaxStored}
	var (
		distinct int64
		horizon  string
	)
	if err := s.db.QueryRowContext(ctx, s.adminSQL(`SELECT count(DISTINCT tx_id) FROM {events}`)).Scan(&distinct); err != nil {
		return RebaseResult{}, wrap("rebase transaction ids", err)
	}
	if err := s.db.QueryRowContext(ctx, horizonOnlySQL).Scan(&horizon); err != nil {
		return RebaseResult{}, wrap("rebase transaction ids", err)
	}
	top, err := strconv.ParseInt(horizon, 10, 64)
	if err != nil {
		return RebaseResult{}, fmt.Errorf("rebase transaction ids: parse the horizon %q: %w", horizon, err)
	}
	if need := distinct + rebaseMargin + 3 - top; need > 0 {
		if !opts.Advance {
			return RebaseResult{}, fmt.Errorf("rebase transaction ids: %d distinct ids need to fit below the counter at %d: advance it by at least %d transactions (`cqrskit migrate rebase-txids --advance`, or pg_resetwal -x while the server is stopped): %w",
				distinct, top, need, ErrTxIDHeadroom)
		}
		if err := s.advanceTxIDs(ctx, need+rebaseMargin); err != nil {
			return RebaseResult{}, err
		}
		res.Advanced = need + rebaseMargin
	}
	if err := s.rebase(ctx, &res); err != nil {
		return RebaseResult{}, err
	}
	res.Rebased = true
	return res, nil
}

// advanceTxIDs consumes n transaction ids in committed, empty
// transactions, in chunks so that ctx is honoured between them.
func (s *Store) advanceTxIDs(ctx context.Context, n int64) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return wrap("advance transaction ids", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET synchronous_commit = off`); err != nil {
		return wrap("advance transaction ids", err)
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), `RESET synchronous_commit`) }()
	const chunk = 100_000
	for done := int64(0); done < n; {
		k := min(chunk, n-done)
		// A DO block outside a transaction may COMMIT: one id per loop.
		if _, err := conn.ExecContext(ctx, `DO $$ BEGIN FOR i IN 1..`+strconv.FormatInt(k, 10)+` LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`); err != nil {
			return wrap(fmt.Sprintf("advance transaction ids (%d of %d done)", done, n), err)
		}
		done += k
		s.log.InfoContext(ctx, "postgres store: advancing the transaction counter", "done", done, "of", n)
	}
	return nil
}

func (s *Store) rebase(ctx context.Context, res *RebaseResult) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("rebase transaction ids", err)
	}
	defer func() { _ = tx.Rollback() }()
	exec := func(query string, args ...any) (int64, error) {
		r, err := tx.ExecContext(ctx, s.adminSQL(query), args...)
		if err != nil {
			return 0, wrap("rebase transaction ids", err)
		}
		return r.RowsAffected()
	}
	// EXCLUSIVE lets readers read (the old ids) until the commit.
	if _, err := exec(`LOCK TABLE {streams}, {events}, {checkpoints} IN EXCLUSIVE MODE`); err != nil {
		return err
	}
	// Every transaction that could still write here has an id at or
	// above the horizon; the new ids end below it.
	if _, err := exec(`CREATE TEMP TABLE cqrskit_txid_map ON COMMIT DROP AS
		SELECT tx_id AS old, row_number() OVER (ORDER BY tx_id) AS rank FROM (SELECT DISTINCT tx_id FROM {events}) d`); err != nil {
		return err
	}
	if _, err := exec(`CREATE UNIQUE INDEX ON cqrskit_txid_map (old)`); err != nil {
		return err
	}
	var horizon string
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cqrskit_txid_map`).Scan(&res.Transactions); err != nil {
		return wrap("rebase transaction ids", err)
	}
	if err := tx.QueryRowContext(ctx, horizonOnlySQL).Scan(&horizon); err != nil {
		return wrap("rebase transaction ids", err)
	}
	top, err := strconv.ParseInt(horizon, 10, 64)
	if err != nil {
		return fmt.Errorf("rebase transaction ids: parse the horizon %q: %w", horizon, err)
	}
	// New id = base + rank, the highest base + n <= horizon - margin; the
	// lowest must stay above the special ids 0..2.
	base := top - rebaseMargin - res.Transactions
	if base < 3 {
		return fmt.Errorf("rebase transaction ids: %d distinct ids need to fit below %d: %w", res.Transactions, top, ErrTxIDHeadroom)
	}
	if res.Events, err = exec(`UPDATE {events} e SET tx_id = (($1::bigint + m.rank)::text)::xid8
		FROM cqrskit_txid_map m WHERE e.tx_id = m.old`, base); err != nil {
		return err
	}
	// A stream's last_tx_id is one of its events' ids; the greatest old
	// id <= it keeps it right for any other value.
	if res.Streams, err = exec(`UPDATE {streams} st SET last_tx_id = coalesce(
		(SELECT (($1::bigint + m.rank)::text)::xid8 FROM cqrskit_txid_map m WHERE m.old <= st.last_tx_id ORDER BY m.old DESC LIMIT 1), '0')`, base); err != nil {
		return err
	}
	// A checkpoint (T, P) covers every event with (tx_id, position) <=
	// (T, P). When T is a stored id it becomes the new one with P kept;
	// otherwise it covers the ids below T, which the greatest of them
	// with the largest position says in the new numbering, and none (0, 0)
	// when T is below every stored id.
	if res.Checkpoints, err = exec(`UPDATE {checkpoints} c SET
		tx_id = coalesce((m.new::text)::bigint, 0),
		position = CASE WHEN m.new IS NULL THEN 0 WHEN m.exact THEN c.position ELSE $2::bigint END
	FROM (
		SELECT c2.name, (($1::bigint + mm.rank)::text)::xid8 AS new, mm.old = (c2.tx_id::text)::xid8 AS exact
		FROM {checkpoints} c2
		LEFT JOIN LATERAL (SELECT old, rank FROM cqrskit_txid_map WHERE old <= (c2.tx_id::text)::xid8 ORDER BY old DESC LIMIT 1) mm ON true
		WHERE c2.tx_id > 0
	) m
	WHERE c.name = m.name`, base, int64(math.MaxInt64)); err != nil {
		return err
	}
	var to sql.NullString
	if err := tx.QueryRowContext(ctx, s.adminSQL(`SELECT max(tx_id)::text FROM {events}`)).Scan(&to); err != nil {
		return wrap("rebase transaction ids", err)
	}
	if to.Valid {
		if res.To, err = strconv.ParseUint(to.String, 10, 64); err != nil {
			return fmt.Errorf("rebase transaction ids: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("rebase transaction ids: commit", err)
	}
	s.log.InfoContext(ctx, "postgres store: renumbered the stored transaction ids below the cluster's counter",
		"transactions", res.Transactions, "events", res.Events, "streams", res.Streams, "checkpoints", res.Checkpoints, "from", res.From, "to", res.To)
	return nil
}
