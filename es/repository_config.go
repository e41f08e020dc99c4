package es

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cqrskit/cqrskit/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// NoRetries as RepositoryConfig.UpdateRetries makes Update try once.
const NoRetries = -1

// RepositoryConfig configures a Repository. The zero value of every
// optional field means its default.
type RepositoryConfig[T Aggregate] struct {
	// New returns a new, empty aggregate, for example
	// func() *Account { return &Account{} }. Required.
	New func() T
	// StreamType names the aggregate type, for example "product". It is
	// stored with every event and prefixes the stream ID: the aggregate with
	// ID "42" lives in stream "product-42". It is also the broker topic
	// the outbox relay publishes the events to (outbox.DefaultTopic), so it
	// must pass event.ValidateStreamType: dot-separated words of ASCII
	// letters, digits, '_' and '-'. Required.
	StreamType string

	// Snapshots stores snapshots. Defaults to nil: no snapshots, every load
	// replays the whole stream.
	Snapshots SnapshotStore
	// SnapshotPolicy decides when to take a snapshot. Defaults to
	// EveryN(100) when Snapshots is set; setting it without Snapshots is an
	// error.
	SnapshotPolicy SnapshotPolicy
	// SnapshotVersion is the schema version of T's snapshot. Bump it when
	// T's snapshot layout changes: snapshots of other versions are ignored
	// (the stream is replayed and a new snapshot taken). Defaults to 1.
	SnapshotVersion int

	// UpdateRetries is how many times Update runs its load-command-save
	// cycle again after a concurrency conflict. Defaults to 3; NoRetries
	// tries once.
	UpdateRetries int
	// Logger receives warnings about ignored snapshots and failed snapshot
	// writes. Defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the repository's spans (see the package
	// documentation, Observability). Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider receives the append metrics. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// withDefaults returns c with zero values replaced by defaults.
func (c RepositoryConfig[T]) withDefaults() RepositoryConfig[T] {
	if c.Snapshots != nil && c.SnapshotPolicy == nil {
		c.SnapshotPolicy = EveryN(100)
	}
	c.SnapshotVersion = cmp.Or(c.SnapshotVersion, 1)
	c.UpdateRetries = cmp.Or(c.UpdateRetries, 3)
	c.UpdateRetries = max(c.UpdateRetries, 0) // NoRetries
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	return c
}

// problems lists every problem of the configuration as given, before
// defaults are applied.
func (c RepositoryConfig[T]) problems() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("RepositoryConfig.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.New == nil {
		bad("New", "required: a function returning a new, empty aggregate")
	} else {
		agg := c.New()
		if _, err := rootOf(agg); err != nil {
			bad("New", "returned an unusable aggregate: %v", err)
		} else if r := agg.Root(); r.version != 0 || len(r.pending) > 0 {
			bad("New", "returned an aggregate at version %d with %d uncommitted events; it must return a new, empty one", r.version, len(r.pending))
		}
	}
	if c.StreamType == "" {
		bad("StreamType", "required, for example \"product\"")
	} else if err := event.ValidateStreamType(c.StreamType); err != nil {
		var ve *event.ValidationError
		if errors.As(err, &ve) {
			bad("StreamType", "%q %s", c.StreamType, ve.Reason)
		} else {
			bad("StreamType", "%v", err)
		}
	}
	if c.SnapshotPolicy != nil && c.Snapshots == nil {
		bad("SnapshotPolicy", "set without Snapshots; set Snapshots too, or neither")
	}
	if n, ok := c.SnapshotPolicy.(EveryN); ok && n < 1 {
		bad("SnapshotPolicy", "EveryN(%d): n must be >= 1", n)
	}
	if c.SnapshotVersion < 0 {
		bad("SnapshotVersion", "%d: must be >= 1 (0 means the default, 1)", c.SnapshotVersion)
	}
	if c.UpdateRetries < NoRetries {
		bad("UpdateRetries", "%d: must be >= 0, or NoRetries (-1)", c.UpdateRetries)
	}
	return errs
}
