package handler

import "errors"

var (
	// ErrDeadLetterNotFound is returned for an unknown dead letter ID.
	ErrDeadLetterNotFound = errors.New("dead letter not found")
	// ErrPermanent marks an error that retrying cannot fix: the message goes
	// to the dead letters at once. Wrap an error with Permanent.
	ErrPermanent = errors.New("permanent failure")
)

// Permanent marks err as permanent: a handler Func returning it (or an
// error wrapping it) has its message dead-lettered without further tries.
// errors.Is(Permanent(err), ErrPermanent) holds, and the original err stays
// in the chain. Permanent(nil) is nil.
//
// Errors satisfying errors.Is(err, event.ErrDecode), such as a payload
// that does not decode, are treated as permanent without the wrapper.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }
