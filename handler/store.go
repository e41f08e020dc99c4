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
	MarkProcessed(ctx context.Context, tx *sql.Tx, handler string, eventID uuid.UUID) (bool, error)
	// PruneProcessed deletes the handler's marks recorded before olderThan
	// and returns how many it deleted.
	PruneProcessed(ctx context.Context, handler string, olderThan time.Time) (int64, error)
	DeadLetterStore
}

// DeadLetterStore keeps messages a handler gave up on.
type DeadLetterStore interface {
	// PutDeadLetter stores d, or for a (Handler, EventID) already stored
	// updates its error, attempts and LastFailedAt.
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
	ID            int64
	Handler       string
	EventID       uuid.UUID
	Topic         string
	Payload       []byte
	Headers       map[string]string
	Error         string
	Attempts      int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}
