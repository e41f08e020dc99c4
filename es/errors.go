package es

import "errors"

var (
	// ErrInvalidConfig: NewRepository rejected its configuration. The error
	// lists every problem, each naming its field.
	ErrInvalidConfig = errors.New("invalid repository config")
	// ErrVersionNotFound: LoadAt asked for a version the stream has not
	// reached.
	ErrVersionNotFound = errors.New("version not found")
	// ErrTxUnsupported: SaveTx or UpdateTx was called on a repository whose
	// event store does not implement event.TxStore.
	ErrTxUnsupported = errors.New("event store does not implement event.TxStore")
)
