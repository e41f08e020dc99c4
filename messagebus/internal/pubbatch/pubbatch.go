// Package pubbatch collects the per-message outcome of one Publish call and
// keeps keys in order: after a message fails before it is sent, the later
// messages with its key are not sent either.
package pubbatch

import (
	"fmt"

	"github.com/cqrskit/cqrskit/messagebus"
)

// Batch is the bookkeeping of one Publish call. Not safe for concurrent
// use.
type Batch struct {
	msgs    []messagebus.Message
	errs    []error
	blocked map[string]int // key -> index of the message that failed first
	failed  int
}

// New starts the bookkeeping for msgs.
func New(msgs []messagebus.Message) *Batch {
	return &Batch{msgs: msgs, errs: make([]error, len(msgs))}
}

// Prepare reports whether msgs[i] may be sent: its key is not blocked by an
// earlier failure and it is valid. Otherwise the failure is recorded.
func (b *Batch) Prepare(i int) bool {
	m := b.msgs[i]
	if j, ok := b.blocked[m.Key]; ok && m.Key != "" {
		b.Reject(i, fmt.Errorf("%w: not sent after msgs[%d] (id %s) failed", messagebus.ErrEarlierFailed, j, b.msgs[j].ID))
		return false
	}
	if err := m.Validate(); err != nil {
		b.Reject(i, err)
		return false
	}
	return true
}

// Reject records that msgs[i] failed before it was sent; later messages
// with its key will not be sent.
func (b *Batch) Reject(i int, err error) {
	b.Fail(i, err)
	if k := b.msgs[i].Key; k != "" {
		if _, ok := b.blocked[k]; !ok {
			if b.blocked == nil {
				b.blocked = map[string]int{}
			}
			b.blocked[k] = i
		}
	}
}

// Fail records that msgs[i] was not acknowledged. The first error recorded
// for a message wins.
func (b *Batch) Fail(i int, err error) {
	if b.errs[i] == nil {
		b.errs[i] = err
		b.failed++
	}
}

// FailAll records err for every message without an error yet.
func (b *Batch) FailAll(err error) {
	for i := range b.msgs {
		b.Fail(i, err)
	}
}

// Failed reports whether msgs[i] has failed.
func (b *Batch) Failed(i int) bool { return b.errs[i] != nil }

// Err returns nil if no message failed, else a *messagebus.PublishError.
func (b *Batch) Err() error {
	if b.failed == 0 {
		return nil
	}
	pe := &messagebus.PublishError{Total: len(b.msgs), Failed: make([]messagebus.MessageError, 0, b.failed)}
	for i, err := range b.errs {
		if err != nil {
			pe.Failed = append(pe.Failed, messagebus.MessageError{Index: i, ID: b.msgs[i].ID, Err: err})
		}
	}
	return pe
}
