package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/handler"
)

var (
	_ handler.Store       = (*Store)(nil)
	_ handler.BatchMarker = (*Store)(nil)
)

// processedQueries is the SQL of the processed table.
type processedQueries struct {
	mark, markBatch, prune string
}

func newProcessedQueries(cfg Config) processedQueries {
	r := tableReplacer(cfg, "processed")
	return processedQueries{
		mark: r.Replace(`INSERT INTO {processed} (handler, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`),
		// Rows are inserted in key order, so concurrent batches that share
		// events wait for one another instead of deadlocking.
		markBatch: r.Replace(`INSERT INTO {processed} (handler, event_id)
SELECT $1, id FROM unnest($2::uuid[]) AS id ORDER BY id
ON CONFLICT DO NOTHING
RETURNING event_id`),
		// One chunk: the next pruneChunk marks after the key $2 (NULL: from
		// the first), of which the old ones are deleted. It returns the
		// chunk's last key, its size and how many it deleted.
		prune: r.Replace(`WITH scanned AS (
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
	}
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
	res, err := tx.ExecContext(ctx, s.q.processed.mark, handlerName, eventID)
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
	rows, err := tx.QueryContext(ctx, s.q.processed.markBatch, handlerName, ids)
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
		err := s.db.QueryRowContext(ctx, s.q.processed.prune, handlerName, after, olderThan, pruneChunk).
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
