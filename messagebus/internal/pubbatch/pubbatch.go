// Package pubbatch collects the per-message outcome of one Publish call and
// keeps keys in order: a key has at most one message in flight, the next
// one is sent only after the broker acknowledged it, and after a message
// fails, before or after it was sent, the later messages with its key are
// not sent.
//
// A publisher calls Next for each message in order and sends the ones it
// admits; for each sent message it reports the outcome to Done, which
// returns the key's next message to pass to Next and send.
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
	blocked map[string]int   // key -> index of the message that failed first
	busy    map[string]bool  // keys with a message in flight
	held    map[string][]int // key -> messages waiting for the one in flight
	failed  int
}

// New starts the bookkeeping for msgs.
func New(msgs []messagebus.Message) *Batch {
	return &Batch{msgs: msgs, errs: make([]error, len(msgs)), busy: map[string]bool{}, held: map[string][]int{}}
}

// Next reports whether msgs[i] may be sent now. If its key has a message
// in flight, msgs[i] is held back and returned by Done once that message
// is acknowledged; if its key is blocked by an earlier failure or it is
// invalid, its failure is recorded. When Next returns true the caller
// sends msgs[i] and reports the outcome with Done, or calls Reject if it
// could not send it.
func (b *Batch) Next(i int) bool {
	k := b.msgs[i].Key
	if k != "" && b.busy[k] {
		if _, blocked := b.blocked[k]; !blocked {
			b.held[k] = append(b.held[k], i)
			return false
		}
	}
	if !b.Prepare(i) {
		return false
	}
	if k != "" {
		b.busy[k] = true
	}
	return true
}

// Prepare reports whether msgs[i] may be sent as far as its own validity
// and its key's earlier failures go. Otherwise the failure is recorded.
// Publishers that send one message at a time and in order (nothing is in
// flight when the next one is sent) may use it instead of Next.
func (b *Batch) Prepare(i int) bool {
	m := b.msgs[i]
	if j, ok := b.blocked[m.Key]; ok && m.Key != "" {
		b.Reject(i, b.earlier(j))
		return false
	}
	if err := m.Validate(); err != nil {
		b.Reject(i, err)
		return false
	}
	return true
}

// Done records the outcome of the sent msgs[i]: acknowledged if err is
// nil, else failed, which blocks its key. It returns the key's next held
// message, which the caller passes to Next and sends.
func (b *Batch) Done(i int, err error) (next int, ok bool) {
	if err != nil {
		b.Reject(i, err)
		return 0, false
	}
	k := b.msgs[i].Key
	if k == "" {
		return 0, false
	}
	b.busy[k] = false
	q := b.held[k]
	if len(q) == 0 {
		return 0, false
	}
	next, b.held[k] = q[0], q[1:]
	return next, true
}

// Reject records that msgs[i] failed; later messages with its key are not
// sent: the ones held back fail now, later ones in Next.
func (b *Batch) Reject(i int, err error) {
	b.Fail(i, err)
	k := b.msgs[i].Key
	if k == "" {
		return
	}
	if _, ok := b.blocked[k]; !ok {
		if b.blocked == nil {
			b.blocked = map[string]int{}
		}
		b.blocked[k] = i
	}
	b.busy[k] = false
	for _, j := range b.held[k] {
		b.Fail(j, b.earlier(b.blocked[k]))
	}
	delete(b.held, k)
}

func (b *Batch) earlier(j int) error {
	return fmt.Errorf("%w: not sent after msgs[%d] (id %s) failed", messagebus.ErrEarlierFailed, j, b.msgs[j].ID)
}

// Fail records that msgs[i] was not acknowledged. The first error recorded
// for a message wins.
func (b *Batch) Fail(i int, err error) {
	if b.errs[i] == nil {
		b.errs[i] = err
		b.failed++
	}
}

// FailHeld records err for every message still held back: it was not
// sent.
func (b *Batch) FailHeld(err error) {
	for k, q := range b.held {
		for _, j := range q {
			b.Fail(j, err)
		}
		delete(b.held, k)
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
