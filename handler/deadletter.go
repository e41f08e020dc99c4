package handler

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/messagebus"
)

// Message rebuilds the message that was dead-lettered.
func (l DeadLetter) Message() messagebus.Message {
	id := l.EventID.String()
	h := maps.Clone(l.Headers)
	if mid, ok := h[HeaderMessageID]; ok {
		id = mid
		delete(h, HeaderMessageID)
	}
	return messagebus.Message{ID: id, Topic: l.Topic, Key: h[envelope.HeaderStreamID], Payload: l.Payload, Headers: h}
}

// DeadLetters manages one handler's dead letters: the messages it gave up
// on, with their error, attempts and failure times. Get one with
// Handler.DeadLetters.
type DeadLetters struct {
	h *Handler
}

// DeadLetters returns the handler's dead letters.
func (h *Handler) DeadLetters() *DeadLetters { return &DeadLetters{h: h} }

// List returns up to limit of the handler's dead letters with ID > afterID,
// in ID order (oldest first). Pass the last ID seen to page on.
func (dl *DeadLetters) List(ctx context.Context, afterID int64, limit int) ([]DeadLetter, error) {
	if limit < 1 {
		return nil, fmt.Errorf("handler %s: list dead letters: limit %d must be >= 1", dl.h.name, limit)
	}
	out, err := dl.h.store.ListDeadLetters(ctx, dl.h.name, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("handler %s: list dead letters: %w", dl.h.name, err)
	}
	return out, nil
}

// All yields every dead letter of the handler in ID order, reading them in
// pages.
func (dl *DeadLetters) All(ctx context.Context) iter.Seq2[DeadLetter, error] {
	return func(yield func(DeadLetter, error) bool) {
		const page = 100
		var after int64
		for {
			ls, err := dl.List(ctx, after, page)
			if err != nil {
				yield(DeadLetter{}, err)
				return
			}
			for _, l := range ls {
				if !yield(l, nil) {
					return
				}
			}
			if len(ls) < page {
				return
			}
			after = ls[len(ls)-1].ID
		}
	}
}

// Get returns one of the handler's dead letters; an error satisfying
// errors.Is(err, ErrDeadLetterNotFound) if it has none with that ID.
func (dl *DeadLetters) Get(ctx context.Context, id int64) (DeadLetter, error) {
	l, err := dl.h.store.GetDeadLetter(ctx, id)
	if err == nil && l.Handler != dl.h.name {
		err = ErrDeadLetterNotFound // another handler's
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("handler %s: dead letter %d: %w", dl.h.name, id, err)
	}
	return l, nil
}

// Replay runs the dead letter's event through the handler's Func again,
// once, in a transaction with its processed mark, and deletes the dead
// letter once that committed. An event the handler has processed since (a
// later delivery) is not applied again: its dead letter is just deleted.
//
// If the Func fails again the dead letter stays, with the new error, one
// more attempt and a new LastFailedAt, and Replay returns the error. There
// are no retries: call Replay again when the cause is fixed. If the dead
// letter cannot be deleted after the commit, replaying it again is safe.
func (dl *DeadLetters) Replay(ctx context.Context, id int64) error {
	h := dl.h
	l, err := dl.Get(ctx, id)
	if err != nil {
		return err
	}
	m := l.Message()
	e, err := decode(m)
	if err != nil {
		return fmt.Errorf("handler %s: replay dead letter %d: %w", h.name, id, err)
	}
	it := &item{d: messagebus.Delivery{Message: m, Attempt: 1}, e: e}
	ctx, span := h.startSpan(ctx, "replay "+e.Type, m.Headers, nil)
	out, err := h.try(ctx, it)
	switch out {
	case failed:
		l.Error = err.Error()
		l.Attempts++
		l.LastFailedAt = h.now().UTC()
		if perr := h.store.PutDeadLetter(ctx, l); perr != nil {
			h.log.WarnContext(ctx, "handler: cannot record the failed replay on the dead letter",
				h.attrs(it, slog.Int64("dead_letter", id), slog.Any("err", perr))...)
		}
		err = fmt.Errorf("handler %s: replay dead letter %d (event %s): %w", h.name, id, e.ID, err)
	case unavailable:
		err = fmt.Errorf("handler %s: replay dead letter %d (event %s): %w", h.name, id, e.ID, err)
	default:
		err = h.store.DeleteDeadLetter(ctx, id)
		if err != nil && !errors.Is(err, ErrDeadLetterNotFound) {
			err = fmt.Errorf("handler %s: replay dead letter %d: event %s is applied, but the dead letter could not be deleted (replaying it again is safe): %w",
				h.name, id, e.ID, err)
			break
		}
		err = nil
		h.log.InfoContext(ctx, "handler: dead letter replayed",
			h.attrs(it, slog.Int64("dead_letter", id), slog.Bool("applied", out == applied))...)
	}
	endSpan(span, err)
	return err
}

// Discard deletes one of the handler's dead letters without handling it.
func (dl *DeadLetters) Discard(ctx context.Context, id int64) error {
	if _, err := dl.Get(ctx, id); err != nil {
		return err
	}
	if err := dl.h.store.DeleteDeadLetter(ctx, id); err != nil {
		return fmt.Errorf("handler %s: discard dead letter %d: %w", dl.h.name, id, err)
	}
	return nil
}
