package handler

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"
)

// Store is the SQL side of idempotent handling: processed marks and dead
// letters. store/postgres and store/sqlite implement it.
type Store interface {
	// DB is the database the read models live in; handlers' transactions
	// are begun on it.
	DB() *sql.DB
	// MarkProcessed records (handler, eventID) in tx. It returns false,
	// without error, when the mark already exists: the event was handled.
	// A concurrent transaction marking the same pair makes it wait for that
	// transaction's end (INSERT ... ON CONFLICT DO NOTHING does), so two
	// deliveries of one event never both see true and commit.
	MarkProcessed(ctx context.Context, tx *sql.Tx, handler string, eventID uuid.UUID) (bool, error)
	// PruneProcessed deletes the handler's marks recorded before olderThan
	// and returns how many it deleted. It should delete in chunks so that
	// other writers are not held up for long.
	PruneProcessed(ctx context.Context, handler string, olderThan time.Time) (int64, error)
	DeadLetterStore
}

// DeadLetterStore keeps messages a handler gave up on.
type DeadLetterStore interface {
	// PutDeadLetter stores d (its ID is ignored), or for a (Handler,
	// EventID) already stored updates its error, attempts and LastFailedAt,
	// keeping the first ID and FirstFailedAt.
	PutDeadLetter(ctx context.Context, d DeadLetter) error
	// ListDeadLetters returns up to limit dead letters with ID > afterID in
	// ID order; an empty handler lists every handler's.
	ListDeadLetters(ctx context.Context, handler string, afterID int64, limit int) ([]DeadLetter, error)
	// GetDeadLetter returns one dead letter; ErrDeadLetterNotFound when none.
	GetDeadLetter(ctx context.Context, id int64) (DeadLetter, error)
	// DeleteDeadLetter removes one; ErrDeadLetterNotFound when none.
	DeleteDeadLetter(ctx context.Context, id int64) error
}

// DeadLetter is a message a handler could not process.
type DeadLetter struct {
	// ID is assigned by the store, increasing.
	ID int64
	// Handler is the name of the handler that gave up.
	Handler string
	// EventID is the message's event ID (for a message ID that is not a
	// UUID, one derived from it; the original is in
	// Headers[HeaderMessageID]).
	EventID uuid.UUID
	// Topic, Payload and Headers are the message's.
	Topic   string
	Payload []byte
	Headers map[string]string
	// Error is the last failure's text.
	Error string
	// Attempts counts the tries made (estimated from the delivery count).
	Attempts int
	// FirstFailedAt and LastFailedAt bound the failures, in UTC.
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}
