package handler

import "errors"

// ErrDeadLetterNotFound is returned for an unknown dead letter ID.
var ErrDeadLetterNotFound = errors.New("dead letter not found")
