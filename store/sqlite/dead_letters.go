package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/handler"
)

const deadLetterColumns = "id, handler, event_id, topic, payload, headers, error, attempts, first_failed_at, last_failed_at"

// PutDeadLetter stores d, or updates the error, attempts and last failure
// time of the dead letter stored for d's handler and event.
func (s *Store) PutDeadLetter(ctx context.Context, d handler.DeadLetter) error {
	if d.Handler == "" {
		return errors.New("put dead letter: the handler name is required")
	}
	headers := []byte("{}")
	if len(d.Headers) > 0 {
		var err error
		if headers, err = json.Marshal(d.Headers); err != nil {
			return fmt.Errorf("put dead letter of event %s: encode headers: %w", d.EventID, err)
		}
	}
	payload := d.Payload
	if payload == nil {
		payload = []byte{}
	}
	table := s.prefix + "dead_letters"
	_, err := s.execWrite(ctx, "INSERT INTO "+table+
		" (handler, event_id, topic, payload, headers, error, attempts, first_failed_at, last_failed_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"+
		" ON CONFLICT (handler, event_id) DO UPDATE SET"+
		" error = excluded.error, attempts = excluded.attempts, last_failed_at = excluded.last_failed_at",
		d.Handler, d.EventID.String(), d.Topic, payload, string(headers), d.Error, d.Attempts,
		d.FirstFailedAt.UnixNano(), d.LastFailedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("put dead letter of event %s for %s: %w", d.EventID, d.Handler, s.explain(ctx, s.db, table, err))
	}
	return nil
}

// ListDeadLetters returns up to limit dead letters with ID > afterID in ID
// order, of one handler or, for an empty handler name, of all.
func (s *Store) ListDeadLetters(ctx context.Context, handlerName string, afterID int64, limit int) ([]handler.DeadLetter, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list dead letters: limit %d must be >= 1", limit)
	}
	table := s.prefix + "dead_letters"
	rows, err := s.db.QueryContext(ctx, "SELECT "+deadLetterColumns+" FROM "+table+
		" WHERE id > ? AND (? = '' OR handler = ?) ORDER BY id LIMIT ?",
		afterID, handlerName, handlerName, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", s.explain(ctx, s.db, table, err))
	}
	defer rows.Close()
	var out []handler.DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// GetDeadLetter returns one dead letter, or an error satisfying
// errors.Is(err, handler.ErrDeadLetterNotFound).
func (s *Store) GetDeadLetter(ctx context.Context, id int64) (handler.DeadLetter, error) {
	table := s.prefix + "dead_letters"
	d, err := scanDeadLetter(s.db.QueryRowContext(ctx, "SELECT "+deadLetterColumns+" FROM "+table+" WHERE id = ?", id).Scan)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return handler.DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, handler.ErrDeadLetterNotFound)
	case err != nil:
		return handler.DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, s.explain(ctx, s.db, table, err))
	}
	return d, nil
}

// DeleteDeadLetter removes one dead letter, or fails with an error
// satisfying errors.Is(err, handler.ErrDeadLetterNotFound).
func (s *Store) DeleteDeadLetter(ctx context.Context, id int64) error {
	table := s.prefix + "dead_letters"
	n, err := s.execWrite(ctx, "DELETE FROM "+table+" WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete dead letter %d: %w", id, s.explain(ctx, s.db, table, err))
	}
	if n == 0 {
		return fmt.Errorf("delete dead letter %d: %w", id, handler.ErrDeadLetterNotFound)
	}
	return nil
}

func scanDeadLetter(scan func(dest ...any) error) (handler.DeadLetter, error) {
	var (
		d                   handler.DeadLetter
		eventID, headers    string
		firstFail, lastFail int64
	)
	if err := scan(&d.ID, &d.Handler, &eventID, &d.Topic, &d.Payload, &headers, &d.Error, &d.Attempts, &firstFail, &lastFail); err != nil {
		return handler.DeadLetter{}, err
	}
	var err error
	if d.EventID, err = uuid.Parse(eventID); err != nil {
		return handler.DeadLetter{}, fmt.Errorf("dead letter %d: stored event ID %q: %w", d.ID, eventID, err)
	}
	if h := strings.TrimSpace(headers); h != "" && h != "{}" {
		if err := json.Unmarshal([]byte(h), &d.Headers); err != nil {
			return handler.DeadLetter{}, fmt.Errorf("dead letter %d: stored headers: %w", d.ID, err)
		}
	}
	if d.Payload == nil {
		d.Payload = []byte{}
	}
	d.FirstFailedAt = time.Unix(0, firstFail).UTC()
	d.LastFailedAt = time.Unix(0, lastFail).UTC()
	return d, nil
}
