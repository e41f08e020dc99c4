package handler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

// Func handles one event inside tx: it writes the read model (or whatever
// the event should change) through tx, and the Handler commits tx together
// with the event's processed mark. It must not commit or roll back tx, and
// must not have effects outside tx that cannot be repeated: a failed try
// is rolled back and tried again.
type Func func(ctx context.Context, tx *sql.Tx, e event.Event) error

// HeaderMessageID is set on a dead letter's headers when the message ID was
// not a UUID; DeadLetter.EventID is then derived from it.
const HeaderMessageID = "Cqrs-Message-Id"

// maxTrackedFailures bounds the first-failure times a Handler remembers for
// its dead letters.
const maxTrackedFailures = 10_000

// Handler runs a Func exactly once per event: see Idempotent. It is safe for
// concurrent use.
type Handler struct {
	name    string
	store   Store
	fn      Func
	batchFn BatchFunc
	policy  RetryPolicy
	log     *slog.Logger
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	tracer  trace.Tracer
	metrics handlerMetrics
	unknown UnknownEvents

	failMu   sync.Mutex
	failedAt map[uuid.UUID]time.Time // first failure of events still failing
	held     map[uuid.UUID]int       // deliveries of an event handed back for the database's fault
}

// Idempotent validates cfg and returns a Handler that applies each event
// to cfg.Func exactly once, recording the processed marks and dead letters
// in cfg.Store.
//
// For one delivery the handler begins a transaction on Store.DB(), records
// the mark (handler name, event ID) — an event marked already is skipped and
// acknowledged — runs Func in the same transaction and commits; returning
// nil then acknowledges the message. See the package documentation for
// retries, dead letters and what counts as a database failure.
func Idempotent(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Handler{
		name:     cfg.Name,
		store:    cfg.Store,
		fn:       cfg.Func,
		batchFn:  cfg.BatchFunc,
		policy:   cfg.RetryPolicy,
		log:      cfg.Logger,
		now:      cfg.Clock,
		sleep:    cfg.Sleep,
		tracer:   cfg.TracerProvider.Tracer(scopeName),
		metrics:  newHandlerMetrics(cfg.MeterProvider, cfg.Name),
		unknown:  cfg.UnknownEvents,
		failedAt: map[uuid.UUID]time.Time{},
		held:     map[uuid.UUID]int{},
	}, nil
}

// Name returns the handler's name.
func (h *Handler) Name() string { return h.name }

// Policy returns the handler's retry policy, defaults filled in.
func (h *Handler) Policy() RetryPolicy { return h.policy }

// Handle handles one delivery; pass h.Handle to messagebus Subscribe.
//
// It returns nil, so the message is acknowledged, when the event took
// effect (now or before: a duplicate) or went to the dead letters. It
// returns an error, so the broker delivers the message again, when the
// handler's in-process tries are used up (with the next backoff delay,
// see messagebus.RetryAfter), when the database failed, or when ctx ended.
func (h *Handler) Handle(ctx context.Context, d messagebus.Delivery) error {
	it := h.newItem(d)
	ctx, span := h.startItemSpan(ctx, it)
	err := h.handle(ctx, it)
	endSpan(span, err)
	return err
}

// handle runs it to an outcome: applied, dead-lettered, or an error.
func (h *Handler) handle(ctx context.Context, it *item) error {
	if it.bad != nil {
		return h.deadLetter(ctx, it, it.bad, max(1, it.d.Attempt))
	}
	return h.retry(ctx, it)
}

// item is one delivery on its way through the handler.
type item struct {
	d     messagebus.Delivery
	e     event.Event
	bad   error // the message is not an event: dead-letter it
	tries int   // Func tries in this delivery that count towards MaxAttempts
	held  int   // tries in this delivery that failed for the database's fault, or on an unknown type
	err   error // the last try's Func error, nil before the first failure
	kind  kind  // whose fault err is
}

func (h *Handler) newItem(d messagebus.Delivery) *item {
	it := &item{d: d}
	it.e, it.bad = decode(d.Message)
	if it.bad != nil {
		it.e.ID = messageEventID(d.ID)
	}
	return it
}

// decode rebuilds the event a relay published. A message that is not one
// fails with an *event.DecodeError, so errors.Is(err, event.ErrDecode).
func decode(m messagebus.Message) (event.Event, error) {
	e, err := envelope.Event(m)
	if err != nil {
		return event.Event{}, &event.DecodeError{
			EventID: m.ID, Stream: m.Key, Type: m.Headers[envelope.HeaderEventType],
			Err: fmt.Errorf("message is not an event: %w", err),
		}
	}
	return e, nil
}

// messageEventID is the event ID of a message whose ID may not be a UUID:
// the ID itself, or a UUID derived from it (stable, so a redelivery updates
// the same dead letter).
func messageEventID(id string) uuid.UUID {
	if u, err := uuid.Parse(id); err == nil {
		return u
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("cqrskit:message:"+id))
}

// attempt numbers the item's latest try over all deliveries. Earlier
// deliveries are counted as InProcess tries each, except those this
// process handed back for the database's fault or an unknown event type,
// so it can run ahead of the real count (such deliveries another process
// saw, NATS deliveries the handler never saw) or behind it (Kafka restarts
// Attempt at 1 after a rebalance).
func (h *Handler) attempt(it *item) int {
	earlier := max(it.d.Attempt, 1) - 1 - h.heldDeliveries(it.e.ID)
	return max(earlier, 0)*h.policy.InProcess + it.tries
}

// retry tries it until it takes effect, is dead-lettered, or goes back to
// the broker. it may have failed a try already (in a batch).
func (h *Handler) retry(ctx context.Context, it *item) error {
	for {
		if it.err != nil && it.kind != kindFunc {
			if err := h.hold(ctx, it); err != nil {
				return err
			}
		} else if it.err != nil {
			n := h.attempt(it)
			if errors.Is(it.err, ErrPermanent) || errors.Is(it.err, event.ErrDecode) || h.policy.exhausted(n) {
				return h.deadLetter(ctx, it, it.err, n)
			}
			wait := h.policy.delay(n)
			h.metrics.retries.Add(ctx, 1, h.metrics.retryFunc)
			if it.tries >= h.policy.InProcess {
				h.log.WarnContext(ctx, "handler: event failed; the broker will deliver it again",
					h.attrs(it, slog.Int("attempt", n), slog.Duration("retry_in", wait), slog.Any("err", it.err))...)
				return messagebus.RetryAfter(h.wrap(it, fmt.Errorf("attempt %d: %w", n, it.err)), wait)
			}
			h.log.WarnContext(ctx, "handler: event failed; retrying",
				h.attrs(it, slog.Int("attempt", n), slog.Duration("retry_in", wait), slog.Any("err", it.err))...)
			if err := h.sleep(ctx, wait); err != nil {
				return h.wrap(it, fmt.Errorf("wait to retry after attempt %d: %w", n, err))
			}
		}
		switch out, err := h.try(ctx, it); out {
		case applied, duplicate:
			h.forgetFailure(it.e.ID)
			return nil
		case failed:
			it.err = err
			if it.kind == kindFunc {
				h.noteFailure(it.e.ID)
			}
		default:
			return h.unavailable(ctx, it, err)
		}
	}
}

// hold prepares the next try of it after a failure that is not the
// event's fault: the database's (a dead connection, a deadlock, a
// serialization failure), or an event type this binary does not know.
// Such tries do not count towards MaxAttempts and never dead-letter; after
// InProcess of them in one delivery the message goes back to the broker.
// A non-nil error ends the delivery with it.
func (h *Handler) hold(ctx context.Context, it *item) error {
	it.held++
	wait := h.policy.delay((max(it.d.Attempt, 1)-1)*h.policy.InProcess + it.held)
	msg := "handler: database failure, not counted as an attempt"
	check := "check the database: connections and server restarts, deadlocks and serialization failures (lock contention)"
	cause := h.metrics.retryDB
	if it.kind == kindUnknown {
		msg = "handler: event type unknown to this binary, not counted as an attempt"
		check = "deploy the consumer with the event type registered, or set handler.Config.UnknownEvents = handler.DeadLetterUnknownEvents"
		cause = h.metrics.retryUnknown
	}
	h.metrics.retries.Add(ctx, 1, cause)
	attrs := h.attrs(it, slog.Int("try", it.held), slog.Duration("retry_in", wait),
		slog.String("check", check), slog.Any("err", it.err))
	if it.held >= h.policy.InProcess {
		h.noteHeld(it.e.ID)
		h.log.WarnContext(ctx, msg+"; the broker will deliver it again", attrs...)
		return messagebus.RetryAfter(h.wrap(it, it.err), wait)
	}
	h.log.WarnContext(ctx, msg+"; retrying", attrs...)
	if err := h.sleep(ctx, wait); err != nil {
		return h.wrap(it, fmt.Errorf("wait to retry: %w (after: %w)", err, it.err))
	}
	return nil
}

// outcome is the result of one try.
type outcome int

const (
	applied     outcome = iota // committed with its mark
	duplicate                  // marked before: nothing done
	failed                     // the Func failed; tried again or dead-lettered
	unavailable                // the database failed: never dead-lettered
)

// try applies it once in its own transaction.
func (h *Handler) try(ctx context.Context, it *item) (outcome, error) {
	tx, err := h.store.DB().BeginTx(ctx, nil)
	if err != nil {
		return unavailable, fmt.Errorf("begin transaction: %w", err)
	}
	fresh, err := h.store.MarkProcessed(ctx, tx, h.name, it.e.ID)
	if err != nil {
		_ = tx.Rollback()
		return unavailable, fmt.Errorf("mark processed: %w", err)
	}
	if !fresh {
		_ = tx.Rollback()
		h.log.DebugContext(ctx, "handler: event handled before; skipped", h.attrs(it)...)
		h.metrics.committed(ctx, 0, 1)
		return duplicate, nil
	}
	if err := h.call(ctx, tx, it.e); err != nil {
		_ = tx.Rollback()
		if ctx.Err() != nil {
			return unavailable, err
		}
		h.failedTry(it, err)
		return failed, err
	}
	if err := tx.Commit(); err != nil {
		// The commit may have happened all the same; the mark makes the
		// next try find out.
		return unavailable, fmt.Errorf("commit: %w", err)
	}
	h.metrics.committed(ctx, 1, 0)
	return applied, nil
}

// call runs the Func, turning a panic into an error; the stack goes to the
// log.
func (h *Handler) call(ctx context.Context, tx *sql.Tx, e event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.log.ErrorContext(ctx, "handler: panic in handler func",
				slog.String("handler", h.name), slog.String("event_id", e.ID.String()),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("handler func panicked: %v", r)
		}
	}()
	return h.fn(ctx, tx, e)
}

// failedTry records a failed Func try of it: whose fault it is, and a
// counted try when it is the event's.
func (h *Handler) failedTry(it *item, err error) {
	if it.kind = h.classify(err); it.kind == kindFunc {
		it.tries++
	}
}

// unavailable hands the message back to the broker after a database
// failure. The delay grows with the delivery count.
func (h *Handler) unavailable(ctx context.Context, it *item, err error) error {
	err = h.wrap(it, err)
	if ctx.Err() != nil {
		return err
	}
	wait := h.policy.delay(max(it.d.Attempt, 1))
	h.noteHeld(it.e.ID)
	h.metrics.retries.Add(ctx, 1, h.metrics.retryDB)
	h.log.WarnContext(ctx, "handler: database unavailable; the message stays with the broker",
		h.attrs(it, slog.Duration("retry_in", wait), slog.Any("err", err))...)
	return messagebus.RetryAfter(err, wait)
}

// deadLetter stores it as a dead letter. Only a stored dead letter lets the
// message be acknowledged: if storing fails the error goes back to the
// broker.
func (h *Handler) deadLetter(ctx context.Context, it *item, cause error, attempts int) error {
	now := h.now().UTC()
	headers := maps.Clone(it.d.Headers)
	if _, err := uuid.Parse(it.d.ID); err != nil {
		if headers == nil {
			headers = map[string]string{}
		}
		headers[HeaderMessageID] = it.d.ID
	}
	payload := it.d.Payload
	if payload == nil {
		payload = []byte{}
	}
	dl := DeadLetter{
		Handler:       h.name,
		EventID:       it.e.ID,
		Topic:         it.d.Topic,
		Payload:       payload,
		Headers:       headers,
		Error:         cause.Error(),
		Attempts:      attempts,
		FirstFailedAt: h.firstFailure(it.e.ID, now),
		LastFailedAt:  now,
	}
	if err := h.store.PutDeadLetter(ctx, dl); err != nil {
		return h.unavailable(ctx, it, fmt.Errorf("store dead letter: %w (after: %v)", err, cause))
	}
	h.forgetFailure(it.e.ID)
	h.metrics.deadLettered.Add(ctx, 1, h.metrics.named)
	h.log.ErrorContext(ctx, "handler: event dead-lettered",
		h.attrs(it, slog.Int("attempts", attempts), slog.Any("err", cause))...)
	return nil
}

// GiveUp dead-letters a message the subscription gave up on. Pass it to
// messagebus.WithGiveUp when the subscription's max deliveries may run out
// before the retry policy's MaxAttempts. If the dead letter cannot be
// stored the failure is logged: the subscription skips the message anyway.
func (h *Handler) GiveUp(ctx context.Context, d messagebus.Delivery, err error) {
	it := h.newItem(d)
	attempts := max(1, d.Attempt) // each delivery looked at a bad message once
	if it.bad == nil {
		attempts *= h.policy.InProcess
	}
	if derr := h.deadLetter(ctx, it, err, attempts); derr != nil {
		h.log.ErrorContext(ctx, "handler: the subscription gave up on a message and its dead letter could not be stored",
			h.attrs(it, slog.Any("err", derr))...)
	}
}

func (h *Handler) wrap(it *item, err error) error {
	return fmt.Errorf("handler %s: event %s: %w", h.name, it.e.ID, err)
}

func (h *Handler) attrs(it *item, more ...any) []any {
	return append([]any{
		slog.String("handler", h.name), slog.String("event_id", it.e.ID.String()),
		slog.String("event_type", it.e.Type), slog.String("stream", it.e.StreamID),
	}, more...)
}

// noteFailure remembers when an event first failed, for its dead letter.
func (h *Handler) noteFailure(id uuid.UUID) {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if _, ok := h.failedAt[id]; ok {
		return
	}
	if len(h.failedAt) >= maxTrackedFailures {
		for k := range h.failedAt { // drop an arbitrary one
			delete(h.failedAt, k)
			break
		}
	}
	h.failedAt[id] = h.now().UTC()
}

func (h *Handler) firstFailure(id uuid.UUID, now time.Time) time.Time {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if t, ok := h.failedAt[id]; ok && t.Before(now) {
		return t
	}
	return now
}

func (h *Handler) forgetFailure(id uuid.UUID) {
	h.failMu.Lock()
	delete(h.failedAt, id)
	delete(h.held, id)
	h.failMu.Unlock()
}

// noteHeld counts a delivery of an event handed back to the broker for a
// failure that was not the event's, so attempt does not count it.
func (h *Handler) noteHeld(id uuid.UUID) {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if _, ok := h.held[id]; !ok && len(h.held) >= maxTrackedFailures {
		for k := range h.held { // drop an arbitrary one
			delete(h.held, k)
			break
		}
	}
	h.held[id]++
}

func (h *Handler) heldDeliveries(id uuid.UUID) int {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	return h.held[id]
}

// Prune deletes the handler's processed marks older than retention and
// returns how many it deleted. An event whose mark is gone is applied again
// if it is delivered again, so retention must exceed the longest time a
// message can be redelivered: see the package documentation.
func (h *Handler) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, fmt.Errorf("handler %s: prune: retention %s must be positive", h.name, retention)
	}
	n, err := h.store.PruneProcessed(ctx, h.name, h.now().Add(-retention))
	if err != nil {
		return n, fmt.Errorf("handler %s: prune processed marks: %w", h.name, err)
	}
	return n, nil
}
