package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
)

var (
	_ handler.Store       = (*Store)(nil)
	_ handler.BatchMarker = (*Store)(nil)
)

// handlerQueries is the SQL of the handler.Store methods.
type handlerQueries struct {
	markProcessed, markProcessedBatch, pruneProcessed      string
	putDeadLetter, listDeadLetters, getDeadLetter, delDead string
}

const deadLetterColumns = `id, handler, event_id, topic, payload, headers, error, attempts, first_failed_at, last_failed_at`

func newHandlerQueries(cfg Config) handlerQueries {
	r := tableReplacer(cfg, "processed", "dead_letters")
	return handlerQueries{
		markProcessed: r.Replace(`INSERT INTO {processed} (handler, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`),
		// Rows are inserted in key order, so concurrent batches that share
		// events wait for one another instead of deadlocking.
		markProcessedBatch: r.Replace(`INSERT INTO {processed} (handler, event_id)
SELECT $1, id FROM unnest($2::uuid[]) AS id ORDER BY id
ON CONFLICT DO NOTHING
RETURNING event_id`),
		// One chunk: the next pruneChunk marks after the key $2 (NULL: from
		// the first), of which the old ones are deleted. It returns the
		// chunk's last key, its size and how many it deleted.
		pruneProcessed: r.Replace(`WITH scanned AS (
	SELECT event_id, processed_at FROM {processed}
	WHERE handler = $1 AND ($2::uuid IS NULL OR event_id > $2::uuid)
	ORDER BY event_id
	LIMIT $4
), deleted AS (
	DELETE FROM {processed} p USING scanned s
	WHERE p.handler = $1 AND p.event_id = s.event_id AND s.processed_at < $3
	RETURNING 1
)
SELECT (SELECT event_id FROM scanned ORDER BY event_id DESC LIMIT 1),
	(SELECT count(*) FROM scanned), (SELECT count(*) FROM deleted)`),
		// A repeat failure keeps the first message, payload and headers,
		// and records the latest error and attempt count.
		putDeadLetter: r.Replace(`INSERT INTO {dead_letters}
	(handler, event_id, topic, payload, headers, error, attempts, first_failed_at, last_failed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, $9, now()), coalesce($9, now()))
ON CONFLICT (handler, event_id) DO UPDATE SET
	error = EXCLUDED.error,
	attempts = EXCLUDED.attempts,
	last_failed_at = EXCLUDED.last_failed_at`),
		listDeadLetters: r.Replace(`SELECT ` + deadLetterColumns + ` FROM {dead_letters}
WHERE id > $1 AND ($2 = '' OR handler = $2)
ORDER BY id
LIMIT $3`),
		getDeadLetter: r.Replace(`SELECT ` + deadLetterColumns + ` FROM {dead_letters} WHERE id = $1`),
		delDead:       r.Replace(`DELETE FROM {dead_letters} WHERE id = $1`),
	}
}

// tableReplacer replaces {name} with the qualified table of each name.
func tableReplacer(cfg Config, names ...string) *strings.Replacer {
	d := cfg.templateData()
	var pairs []string
	for _, n := range names {
		pairs = append(pairs, "{"+n+"}", d.Q+d.Prefix+n)
	}
	return strings.NewReplacer(pairs...)
}

// MarkProcessed records in tx that handlerName handled eventID, and reports
// false, without error, when the mark already exists. A concurrent
// transaction marking the same event makes this one wait for it to end:
// if it commits, MarkProcessed returns false; if it rolls back, true. See
// handler.Store.
func (s *Store) MarkProcessed(ctx context.Context, tx *sql.Tx, handlerName string, eventID uuid.UUID) (bool, error) {
	if tx == nil || handlerName == "" {
		return false, fmt.Errorf("mark processed: need a transaction and a handler name (handler %q)", handlerName)
	}
	res, err := tx.ExecContext(ctx, s.q.handler.markProcessed, handlerName, eventID)
	if err != nil {
		return false, wrap(fmt.Sprintf("mark event %s processed by handler %s", eventID, handlerName), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(fmt.Sprintf("mark event %s processed by handler %s", eventID, handlerName), err)
	}
	return n == 1, nil
}

// MarkProcessedBatch records in tx that handlerName handled each of ids
// (distinct), in one statement, and reports for each whether its mark is
// new, with MarkProcessed's semantics. See handler.BatchMarker.
func (s *Store) MarkProcessedBatch(ctx context.Context, tx *sql.Tx, handlerName string, ids []uuid.UUID) ([]bool, error) {
	if tx == nil || handlerName == "" {
		return nil, fmt.Errorf("mark processed: need a transaction and a handler name (handler %q)", handlerName)
	}
	fresh := make([]bool, len(ids))
	if len(ids) == 0 {
		return fresh, nil
	}
	op := fmt.Sprintf("mark %d events processed by handler %s", len(ids), handlerName)
	index := make(map[uuid.UUID]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	rows, err := tx.QueryContext(ctx, s.q.handler.markProcessedBatch, handlerName, ids)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(op, err)
		}
		if i, ok := index[id]; ok {
			fresh[i] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return fresh, nil
}

// pruneChunk is how many marks one PruneProcessed statement considers, so
// that no statement holds many row locks or runs for long.
const pruneChunk = 5000

// PruneProcessed deletes handlerName's marks recorded before olderThan and
// returns how many it deleted. It walks the handler's marks in key order,
// pruneChunk at a time, each chunk in its own short statement; on an error
// it returns the count deleted so far. An event redelivered after its mark
// is pruned is handled again, so keep marks for longer than the broker may
// redeliver. See handler.Store.
func (s *Store) PruneProcessed(ctx context.Context, handlerName string, olderThan time.Time) (int64, error) {
	op := fmt.Sprintf("prune handler %s's processed marks before %s", handlerName, olderThan.Format(time.RFC3339))
	var (
		total int64
		after uuid.NullUUID
	)
	for {
		var last uuid.NullUUID
		var scanned, deleted int64
		err := s.db.QueryRowContext(ctx, s.q.handler.pruneProcessed, handlerName, after, olderThan, pruneChunk).
			Scan(&last, &scanned, &deleted)
		if err != nil {
			return total, wrap(op, err)
		}
		total += deleted
		if scanned < pruneChunk {
			return total, nil
		}
		after = last
	}
}

// PutDeadLetter stores d, or, when (d.Handler, d.EventID) is stored
// already, sets its Error, Attempts and LastFailedAt (keeping the first
// Topic, Payload, Headers and FirstFailedAt). d.ID is ignored. A zero
// LastFailedAt means now, a zero FirstFailedAt means LastFailedAt. See
// handler.DeadLetterStore.
func (s *Store) PutDeadLetter(ctx context.Context, d handler.DeadLetter) error {
	op := fmt.Sprintf("store dead letter of event %s for handler %s", d.EventID, d.Handler)
	if d.Handler == "" {
		return errors.New(op + ": the handler name is required")
	}
	if d.Payload == nil {
		d.Payload = []byte{} // the column is NOT NULL; an empty body is a body
	}
	headers, err := json.Marshal(d.Headers)
	if err != nil {
		return fmt.Errorf("%s: encode headers: %w", op, err)
	}
	if d.Headers == nil {
		headers = []byte(`{}`)
	}
	_, err = s.db.ExecContext(ctx, s.q.handler.putDeadLetter,
		d.Handler, d.EventID, d.Topic, d.Payload, string(headers), d.Error, d.Attempts,
		nullTime(d.FirstFailedAt), nullTime(d.LastFailedAt))
	return wrap(op, err)
}

// ListDeadLetters returns up to limit dead letters with ID > afterID in ID
// order; an empty handlerName lists every handler's. See
// handler.DeadLetterStore.
func (s *Store) ListDeadLetters(ctx context.Context, handlerName string, afterID int64, limit int) ([]handler.DeadLetter, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	rows, err := s.db.QueryContext(ctx, s.q.handler.listDeadLetters, afterID, handlerName, limit)
	if err != nil {
		return nil, wrap("list dead letters", err)
	}
	defer rows.Close()
	var out []handler.DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, wrap("list dead letters", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list dead letters", err)
	}
	return out, nil
}

// GetDeadLetter returns the dead letter with id, or an error wrapping
// handler.ErrDeadLetterNotFound. See handler.DeadLetterStore.
func (s *Store) GetDeadLetter(ctx context.Context, id int64) (handler.DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, s.q.handler.getDeadLetter, id)
	if err != nil {
		return handler.DeadLetter{}, wrap(fmt.Sprintf("get dead letter %d", id), err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return handler.DeadLetter{}, wrap(fmt.Sprintf("get dead letter %d", id), err)
		}
		return handler.DeadLetter{}, fmt.Errorf("get dead letter %d: %w", id, handler.ErrDeadLetterNotFound)
	}
	d, err := scanDeadLetter(rows)
	if err != nil {
		return handler.DeadLetter{}, wrap(fmt.Sprintf("get dead letter %d", id), err)
	}
	return d, nil
}

// DeleteDeadLetter removes the dead letter with id, or returns an error
// wrapping handler.ErrDeadLetterNotFound. See handler.DeadLetterStore.
func (s *Store) DeleteDeadLetter(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q.handler.delDead, id)
	if err != nil {
		return wrap(fmt.Sprintf("delete dead letter %d", id), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(fmt.Sprintf("delete dead letter %d", id), err)
	}
	if n == 0 {
		return fmt.Errorf("delete dead letter %d: %w", id, handler.ErrDeadLetterNotFound)
	}
	return nil
}

func scanDeadLetter(rows *sql.Rows) (handler.DeadLetter, error) {
	var (
		d       handler.DeadLetter
		headers []byte
	)
	if err := rows.Scan(&d.ID, &d.Handler, &d.EventID, &d.Topic, &d.Payload, &headers, &d.Error, &d.Attempts,
		&d.FirstFailedAt, &d.LastFailedAt); err != nil {
		return handler.DeadLetter{}, err
	}
	if err := json.Unmarshal(headers, &d.Headers); err != nil {
		return handler.DeadLetter{}, fmt.Errorf("decode headers of dead letter %d: %w", d.ID, err)
	}
	if len(d.Headers) == 0 {
		d.Headers = nil
	}
	d.FirstFailedAt = d.FirstFailedAt.UTC()
	d.LastFailedAt = d.LastFailedAt.UTC()
	return d, nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }
