package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
)

const deadLetterColumns = `id, handler, event_id, topic, payload, headers, error, attempts, first_failed_at, last_failed_at`

// deadLetterQueries is the SQL of the dead_letters table.
type deadLetterQueries struct {
	put, list, get, del string
}

func newDeadLetterQueries(cfg Config) deadLetterQueries {
	r := tableReplacer(cfg, "dead_letters")
	return deadLetterQueries{
		// A repeat failure keeps the first message, payload and headers,
		// and records the latest error and attempt count.
		put: r.Replace(`INSERT INTO {dead_letters}
	(handler, event_id, topic, payload, headers, error, attempts, first_failed_at, last_failed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, $9, now()), coalesce($9, now()))
ON CONFLICT (handler, event_id) DO UPDATE SET
	error = EXCLUDED.error,
	attempts = EXCLUDED.attempts,
	last_failed_at = EXCLUDED.last_failed_at`),
		list: r.Replace(`SELECT ` + deadLetterColumns + ` FROM {dead_letters}
WHERE id > $1 AND ($2 = '' OR handler = $2)
ORDER BY id
LIMIT $3`),
		get: r.Replace(`SELECT ` + deadLetterColumns + ` FROM {dead_letters} WHERE id = $1`),
		del: r.Replace(`DELETE FROM {dead_letters} WHERE id = $1`),
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
	_, err = s.db.ExecContext(ctx, s.q.deadLetters.put,
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
	rows, err := s.db.QueryContext(ctx, s.q.deadLetters.list, afterID, handlerName, limit)
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
	rows, err := s.db.QueryContext(ctx, s.q.deadLetters.get, id)
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
	res, err := s.db.ExecContext(ctx, s.q.deadLetters.del, id)
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
