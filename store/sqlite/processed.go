package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
