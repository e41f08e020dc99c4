package handler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

// BatchFunc applies, inside tx, every event of a HandleBatch call that is
// new to the handler (already-processed events are left out), for read
// models that write set-based: one multi-row statement per batch instead
// of one per event. Set it as Config.BatchFunc.
type BatchFunc func(ctx context.Context, tx *sql.Tx, events []event.Event) error

// HandleBatch handles deliveries in one transaction: one mark and one Func
// call per event, one commit. It returns one error per delivery, in order,
// with Handle's meaning: nil acknowledges the message.
//
// An event delivered twice within the batch, or handled before, is applied
// once. Messages that are not events are dead-lettered first and stay out
// of the transaction. If a Func fails, the transaction is rolled back and
// every delivery is handled on its own: each good one once in its own
// transaction, then the failed ones with Handle's retries, so one bad
// message neither rolls back nor holds up its neighbours. If the database
// fails, every delivery gets the error and nothing is acknowledged.
func (h *Handler) HandleBatch(ctx context.Context, ds []messagebus.Delivery) []error {
	errs := make([]error, len(ds))
	if len(ds) == 0 {
		return errs
	}
	items := make([]*item, len(ds))
	for i, d := range ds {
		items[i] = h.newItem(d)
	}
	ctx, span := h.startBatchSpan(ctx, items)
	alone := h.batch(ctx, items, func(i int, err error) { errs[i] = err })
	for _, i := range alone {
		errs[i] = h.retry(ctx, items[i])
	}
	endSpan(span, errors.Join(errs...))
	return errs
}

// batch applies items in one transaction and reports each settled item's
// result to report. It returns the indexes of the items whose Func failed
// (their err is set), left to handle alone with retry.
func (h *Handler) batch(ctx context.Context, items []*item, report func(i int, err error)) (alone []int) {
	good := make([]int, 0, len(items))
	for i, it := range items {
		if it.bad != nil {
			report(i, h.deadLetter(ctx, it, it.bad, max(1, it.d.Attempt)))
			continue
		}
		good = append(good, i)
	}
	if len(good) == 1 {
		return h.tryEach(ctx, items, good, report)
	}

	culprit, out, err := h.tryBatch(ctx, items, good)
	switch out {
	case applied:
		for _, i := range good {
			h.forgetFailure(items[i].e.ID)
			report(i, nil)
		}
		return nil
	case unavailable:
		for _, i := range good {
			report(i, h.unavailable(ctx, items[i], err))
		}
		return nil
	}

	if culprit < 0 {
		// The BatchFunc failed on the batch as a whole: find the bad event
		// by handling each with the Func.
		h.log.WarnContext(ctx, "handler: batch func failed; handling the batch's events one at a time",
			slog.String("handler", h.name), slog.Int("batch", len(good)), slog.Any("err", err))
		return h.tryEach(ctx, items, good, report)
	}
	bad := items[culprit]
	bad.err = err
	if bad.kind == kindFunc {
		h.noteFailure(bad.e.ID)
	}
	h.log.WarnContext(ctx, "handler: batch rolled back; handling its events one at a time",
		h.attrs(bad, slog.Int("batch", len(good)), slog.Any("err", err))...)
	others := slices.DeleteFunc(slices.Clone(good), func(i int) bool { return i == culprit })
	return append(h.tryEach(ctx, items, others, report), culprit)
}

// tryEach tries each of items[idx...] once in its own transaction,
// reporting those that took effect or met a database failure, and returns
// the indexes of those whose Func failed.
func (h *Handler) tryEach(ctx context.Context, items []*item, idx []int, report func(i int, err error)) (alone []int) {
	for _, i := range idx {
		it := items[i]
		switch out, err := h.try(ctx, it); out {
		case applied, duplicate:
			h.forgetFailure(it.e.ID)
			report(i, nil)
		case failed:
			it.err = err
			if it.kind == kindFunc {
				h.noteFailure(it.e.ID)
			}
			alone = append(alone, i)
		default:
			report(i, h.unavailable(ctx, it, err))
		}
	}
	return alone
}

// tryBatch applies items[idx...] in one transaction. When a Func fails it
// rolls back and returns the failing item's index.
func (h *Handler) tryBatch(ctx context.Context, items []*item, idx []int) (culprit int, out outcome, err error) {
	tx, err := h.store.DB().BeginTx(ctx, nil)
	if err != nil {
		return -1, unavailable, fmt.Errorf("batch of %d: begin transaction: %w", len(idx), err)
	}
	fresh, err := h.markBatch(ctx, tx, items, idx)
	if err != nil {
		_ = tx.Rollback()
		return -1, unavailable, fmt.Errorf("batch of %d: mark processed: %w", len(idx), err)
	}
	if h.batchFn != nil {
		if err := h.applyBatchFunc(ctx, tx, items, idx, fresh); err != nil {
			if ctx.Err() != nil {
				return -1, unavailable, err
			}
			return -1, failed, err // the batch's fault: handled one by one
		}
	} else {
		for k, i := range idx {
			it := items[i]
			if !fresh[k] {
				continue // handled before, or earlier in this batch
			}
			if err := h.call(ctx, tx, it.e); err != nil {
				_ = tx.Rollback()
				if ctx.Err() != nil {
					return i, unavailable, err
				}
				h.failedTry(it, err)
				return i, failed, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, unavailable, fmt.Errorf("batch of %d: commit: %w", len(idx), err)
	}
	var n int
	for _, f := range fresh {
		if f {
			n++
		}
	}
	h.metrics.committed(ctx, n, len(idx)-n)
	return -1, applied, nil
}

// applyBatchFunc calls the BatchFunc once with the batch's new events,
// rolling tx back when it fails.
func (h *Handler) applyBatchFunc(ctx context.Context, tx *sql.Tx, items []*item, idx []int, fresh []bool) error {
	evs := make([]event.Event, 0, len(idx))
	for k, i := range idx {
		if fresh[k] {
			evs = append(evs, items[i].e)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	if err := h.callBatch(ctx, tx, evs); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("batch func on %d events: %w", len(evs), err)
	}
	return nil
}

// BatchMarker is implemented by stores that mark many events in one
// statement (a multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING).
// HandleBatch uses it when the Store has it.
type BatchMarker interface {
	// MarkProcessedBatch records (handler, id) for each of ids, which are
	// distinct, in tx, and reports for each whether its mark is new, with
	// MarkProcessed's semantics.
	MarkProcessedBatch(ctx context.Context, tx *sql.Tx, handler string, ids []uuid.UUID) ([]bool, error)
}

// markBatch marks items[idx...] processed in tx and reports, per index of
// idx, whether the mark is new; of an event twice in idx only the first is.
func (h *Handler) markBatch(ctx context.Context, tx *sql.Tx, items []*item, idx []int) ([]bool, error) {
	fresh := make([]bool, len(idx))
	bm, ok := h.store.(BatchMarker)
	if !ok {
		for k, i := range idx {
			var err error
			if fresh[k], err = h.store.MarkProcessed(ctx, tx, h.name, items[i].e.ID); err != nil {
				return nil, err
			}
		}
		return fresh, nil
	}
	first := make(map[uuid.UUID]int, len(idx)) // event ID -> its first k
	ids := make([]uuid.UUID, 0, len(idx))
	for k, i := range idx {
		id := items[i].e.ID
		if _, dup := first[id]; !dup {
			first[id] = k
			ids = append(ids, id)
		}
	}
	marked, err := bm.MarkProcessedBatch(ctx, tx, h.name, ids)
	if err != nil {
		return nil, err
	}
	if len(marked) != len(ids) {
		return nil, fmt.Errorf("store marked %d of %d events", len(marked), len(ids))
	}
	for j, id := range ids {
		fresh[first[id]] = marked[j]
	}
	return fresh, nil
}

// callBatch runs the BatchFunc, turning a panic into an error.
func (h *Handler) callBatch(ctx context.Context, tx *sql.Tx, evs []event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.log.ErrorContext(ctx, "handler: panic in batch func",
				slog.String("handler", h.name), slog.Int("events", len(evs)),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("handler batch func panicked: %v", r)
		}
	}()
	return h.batchFn(ctx, tx, evs)
}
