package messagebus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrInvalidArgument: an argument was rejected before anything was sent.
	// The error is a *ValidationError naming the field and value.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrMessageTooLarge: the message exceeds the broker's size limit. The
	// error is a *MessageTooLargeError with the size and the limit.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrEarlierFailed: the message was not sent because an earlier message
	// with the same key in the same Publish call failed; sending it would
	// break the key's order.
	ErrEarlierFailed = errors.New("earlier message with the same key failed")
	// ErrUnavailable: the broker could not be reached or did not answer in
	// time. Messages may still have been stored: republish them with the
	// same IDs.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrClosed: the broker was closed.
	ErrClosed = errors.New("broker closed")
)

// ValidationError names the field and value that made an argument invalid.
// It satisfies errors.Is(err, ErrInvalidArgument).
type ValidationError struct {
	Field  string // for example "Topic" or "group"
	Value  string // the offending value, as given
	Reason string // what was expected
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%v: %s %q: %s", ErrInvalidArgument, e.Field, e.Value, e.Reason)
}

func (e *ValidationError) Is(target error) bool { return target == ErrInvalidArgument }

// MessageTooLargeError reports a message over the broker's limit. It
// satisfies errors.Is(err, ErrMessageTooLarge).
type MessageTooLargeError struct {
	Size  int    // bytes, as the broker measures them
	Limit int    // the broker's limit in bytes
	What  string // the limit's origin, for example "server max_payload"
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("%v: %d bytes, limit %d (%s)", ErrMessageTooLarge, e.Size, e.Limit, e.What)
}

func (e *MessageTooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// PublishError reports the messages of one Publish call that the broker did
// not acknowledge; every other message of the call was acknowledged.
// Publish returns no other error type, so a caller can always keep exactly
// the failed messages for a retry. A failed message may still have been
// stored (its ack was lost): republish it with the same ID.
type PublishError struct {
	// Failed lists the failures in index order.
	Failed []MessageError
	// Total is the number of messages in the call.
	Total int
}

// MessageError is the failure of one message of a Publish call.
type MessageError struct {
	Index int    // position in the Publish call
	ID    string // the message ID
	Err   error
}

func (e MessageError) Error() string {
	return "msgs[" + strconv.Itoa(e.Index) + "] (id " + e.ID + "): " + e.Err.Error()
}

func (e MessageError) Unwrap() error { return e.Err }

func (e *PublishError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "publish: %d of %d messages not acknowledged: ", len(e.Failed), e.Total)
	const shown = 3
	for i, f := range e.Failed {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-shown)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap returns every message's error, so errors.Is and errors.As see
// them: errors.Is(err, ErrMessageTooLarge) holds if any message was too
// large.
func (e *PublishError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// Indexes returns the positions of the failed messages in the Publish call.
func (e *PublishError) Indexes() []int {
	idx := make([]int, len(e.Failed))
	for i, f := range e.Failed {
		idx[i] = f.Index
	}
	return idx
}

// RetryAfter wraps err so the subscription retries the message after d
// instead of its default retry delay. A nil err is replaced by a generic
// one: returning RetryAfter(nil, d) still means "failed".
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		err = errors.New("handler asked for a retry")
	}
	return &retryAfterError{err: err, delay: max(d, 0)}
}

// RetryDelay returns the delay requested with RetryAfter anywhere in err's
// chain.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string {
	return e.err.Error() + " (retry after " + e.delay.String() + ")"
}
func (e *retryAfterError) Unwrap() error { return e.err }
