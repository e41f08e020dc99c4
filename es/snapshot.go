package es

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SnapshotPolicy decides when the repository takes a snapshot. It is asked
// after every Save and after every Load that replayed events, with the
// version of the latest snapshot known for the stream (0: none, or one that
// was ignored) and the aggregate's current version.
type SnapshotPolicy interface {
	ShouldSnapshot(lastSnapshot, version int64) bool
}

// EveryN takes a snapshot whenever the version has crossed a multiple of n
// since the last snapshot: with EveryN(100), an aggregate saved at versions
// 98 and then 103 is snapshotted at 103. n must be >= 1.
type EveryN int64

// ShouldSnapshot implements SnapshotPolicy.
func (n EveryN) ShouldSnapshot(lastSnapshot, version int64) bool {
	if n < 1 {
		return false
	}
	return version/int64(n) > lastSnapshot/int64(n)
}

// SnapshotPolicyFunc adapts a function to SnapshotPolicy.
type SnapshotPolicyFunc func(lastSnapshot, version int64) bool

// ShouldSnapshot implements SnapshotPolicy.
func (f SnapshotPolicyFunc) ShouldSnapshot(lastSnapshot, version int64) bool {
	return f(lastSnapshot, version)
}

// SnapshotMarshaler is implemented by aggregates whose snapshot is not
// simply their exported fields as JSON, for example because their state is
// unexported. UnmarshalSnapshot is called on a new aggregate from
// RepositoryConfig.New.
type SnapshotMarshaler interface {
	MarshalSnapshot() ([]byte, error)
	UnmarshalSnapshot(data []byte) error
}

func encodeSnapshot(agg Aggregate) ([]byte, error) {
	if m, ok := agg.(SnapshotMarshaler); ok {
		return m.MarshalSnapshot()
	}
	return json.Marshal(agg)
}

// decodeSnapshot fills a new aggregate from data. JSON decoding rejects
// unknown fields: a snapshot with a field the type no longer has was taken
// by other code, and replaying is safer than guessing.
func decodeSnapshot(agg Aggregate, data []byte) error {
	if m, ok := agg.(SnapshotMarshaler); ok {
		return m.UnmarshalSnapshot(data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(agg); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}
