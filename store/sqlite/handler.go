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

var (
	_ handler.Store       = (*Store)(nil)
	_ handler.BatchMarker = (*Store)(nil)
)

// pruneChunk is how many marks one PruneProcessed statement considers, so a
// large prune never holds SQLite's write lock for long.
const pruneChunk = 5000

// MarkProcessed records that handler processed eventID, inside tx (begun on
// DB()). It returns false when the mark exists already. See
// handler.Store.
func (s *Store) MarkProcessed(ctx context.Context, tx *sql.Tx, handlerName string, eventID uuid.UUID) (bool, error) {
	if tx == nil || handlerName == "" {
		return false, fmt.Errorf("mark processed: need a transaction and a handler name (handler %q)", handlerName)
	}
	table := s.prefix + "processed"
	res, err := tx.ExecContext(ctx, "INSERT INTO "+table+
		" (handler, event_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
		handlerName, eventID.String(), time.Now().UnixNano())
	if err != nil {
		return false, fmt.Errorf("mark event %s processed by %s: %w", eventID, handlerName, s.explain(ctx, tx, table, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark event %s processed by %s: %w", eventID, handlerName, err)
	}
	return n == 1, nil
}

// MarkProcessedBatch marks the distinct ids processed by handler inside
// tx, one multi-row INSERT per 500, and reports which marks are new. See
// handler.BatchMarker.
func (s *Store) MarkProcessedBatch(ctx context.Context, tx *sql.Tx, handlerName string, ids []uuid.UUID) ([]bool, error) {
	if tx == nil || handlerName == "" {
		return nil, fmt.Errorf("mark processed: need a transaction and a handler name (handler %q)", handlerName)
	}
	table := s.prefix + "processed"
	fresh := make([]bool, len(ids))
	index := make(map[string]int, len(ids))
	now := time.Now().UnixNano()
	for start := 0; start < len(ids); start += insertChunk {
		chunk := ids[start:min(start+insertChunk, len(ids))]
		args := make([]any, 0, 3*len(chunk))
		for i, id := range chunk {
			key := id.String()
			index[key] = start + i
			args = append(args, handlerName, key, now)
		}
		rows, err := tx.QueryContext(ctx, "INSERT INTO "+table+" (handler, event_id, processed_at) VALUES "+
			placeholders(len(chunk), 3)+" ON CONFLICT DO NOTHING RETURNING event_id", args...)
		if err != nil {
			return nil, fmt.Errorf("mark %d events processed by %s: %w", len(ids), handlerName, s.explain(ctx, tx, table, err))
		}
		for rows.Next() {
			var key string
			if err := rows.Scan(&key); err != nil {
				rows.Close()
				return nil, fmt.Errorf("mark %d events processed by %s: %w", len(ids), handlerName, err)
			}
			if i, ok := index[key]; ok {
				fresh[i] = true
			}
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return nil, fmt.Errorf("mark %d events processed by %s: %w", len(ids), handlerName, err)
		}
	}
	return fresh, nil
}

// PruneProcessed deletes handler's marks recorded before olderThan. It
// walks the marks in chunks, each deleted in its own short transaction.
func (s *Store) PruneProcessed(ctx context.Context, handlerName string, olderThan time.Time) (int64, error) {
	table := s.prefix + "processed"
	cutoff := olderThan.UnixNano()
	var total int64
	after := ""
	for {
		// The chunk's last key; none means the rest fits in one chunk.
		var upper string
		err := s.db.QueryRowContext(ctx, "SELECT event_id FROM "+table+
			" WHERE handler = ? AND event_id > ? ORDER BY event_id LIMIT 1 OFFSET ?",
			handlerName, after, pruneChunk-1).Scan(&upper)
		last := errors.Is(err, sql.ErrNoRows)
		if err != nil && !last {
			return total, fmt.Errorf("prune marks of %s: %w", handlerName, s.explain(ctx, s.db, table, err))
		}
		query := "DELETE FROM " + table + " WHERE handler = ? AND event_id > ? AND processed_at < ?"
		args := []any{handlerName, after, cutoff}
		if !last {
			query += " AND event_id <= ?"
			args = append(args, upper)
		}
		n, err := s.execWrite(ctx, query, args...)
		total += n
		if err != nil {
			return total, fmt.Errorf("prune marks of %s: %w", handlerName, s.explain(ctx, s.db, table, err))
		}
		if last {
			return total, nil
		}
		after = upper
	}
}

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
