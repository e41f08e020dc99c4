package faultmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

// PublisherFaults are per-message probabilities of the faults a Publisher
// injects while its Dice are not stopped.
type PublisherFaults struct {
	// Before fails a message before it is sent: the broker never sees it.
	Before float64
	// LostAck sends a message and then reports it failed, as when the
	// broker stored it but its ack never came.
	LostAck float64
	// Timeout is LostAck after a short wait (up to 5ms), as when the ack
	// did not come in time.
	Timeout float64
	// Pause stops the call before a message for PauseFor (cut short by
	// ctx; the rest of the call then fails unsent), as a process the
	// scheduler or a GC stalls in the middle of a batch.
	Pause    float64
	PauseFor time.Duration
}

// Publisher wraps a broker with seeded faults. It keeps the
// messagebus.Publisher contract: after a message of key K failed, the
// call's later messages of K are not sent (messagebus.ErrEarlierFailed).
type Publisher struct {
	Inner  messagebus.Publisher
	Dice   *Dice
	Faults PublisherFaults
	// Reject, if set, names messages the broker rejects for good (a
	// *messagebus.MessageTooLargeError); it applies whether or not the
	// dice are stopped: a permanent rejection lasts until the test lifts
	// it.
	Reject func(m messagebus.Message) bool
	// OnSend, if set, is called with the messages just before they are
	// handed to Inner.
	OnSend func(msgs []messagebus.Message)
	// MaxPauses bounds the pauses of this Publisher; 0 is unlimited.
	MaxPauses int

	pauses atomic.Int64
}

// errInjected marks every error the injectors make up.
var errInjected = errors.New("injected fault")

// Publish implements messagebus.Publisher.
func (p *Publisher) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	pe := &messagebus.PublishError{Total: len(msgs)}
	blocked := map[string]bool{}
	fail := func(i int, err error) {
		pe.Failed = append(pe.Failed, messagebus.MessageError{Index: i, ID: msgs[i].ID, Err: err})
		if msgs[i].Key != "" {
			blocked[msgs[i].Key] = true
		}
	}
	// Messages go to Inner in runs between pauses; each run is one
	// pipelined call.
	var run []int
	lostAck := map[int]error{}
	flush := func() {
		if len(run) == 0 {
			return
		}
		out := make([]messagebus.Message, len(run))
		for j, i := range run {
			out[j] = msgs[i]
		}
		if p.OnSend != nil {
			p.OnSend(out)
		}
		err := p.Inner.Publish(ctx, out...)
		innerFailed := map[int]error{}
		if err != nil {
			var ipe *messagebus.PublishError
			if errors.As(err, &ipe) {
				for _, f := range ipe.Failed {
					innerFailed[f.Index] = f.Err
				}
			} else {
				for j := range run {
					innerFailed[j] = err
				}
			}
		}
		for j, i := range run {
			if ferr, ok := innerFailed[j]; ok {
				fail(i, ferr)
			} else if ferr, ok := lostAck[i]; ok {
				fail(i, ferr)
			}
		}
		run = run[:0]
	}
	for i, m := range msgs {
		if blocked[m.Key] {
			fail(i, messagebus.ErrEarlierFailed)
			continue
		}
		if ctx.Err() != nil {
			fail(i, fmt.Errorf("not sent: %w: %w", ctx.Err(), messagebus.ErrUnavailable))
			continue
		}
		if p.Reject != nil && p.Reject(m) {
			fail(i, fmt.Errorf("%w: %w", errInjected, &messagebus.MessageTooLargeError{Size: len(m.Payload), Limit: 0, What: "fault model rejection"}))
			continue
		}
		if p.Dice.Roll(p.Faults.Pause) && (p.MaxPauses == 0 || p.pauses.Add(1) <= int64(p.MaxPauses)) {
			flush()
			if blocked[m.Key] {
				fail(i, messagebus.ErrEarlierFailed)
				continue
			}
			t := time.NewTimer(p.Faults.PauseFor)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			if ctx.Err() != nil {
				fail(i, fmt.Errorf("%w: paused past the deadline, not sent: %w: %w", errInjected, ctx.Err(), messagebus.ErrUnavailable))
				continue
			}
		}
		switch {
		case p.Dice.Roll(p.Faults.Before):
			fail(i, fmt.Errorf("%w: error before sending: %w", errInjected, messagebus.ErrUnavailable))
			continue
		case p.Dice.Roll(p.Faults.LostAck):
			lostAck[i] = fmt.Errorf("%w: ack lost (the message is stored): %w", errInjected, messagebus.ErrUnavailable)
		case p.Dice.Roll(p.Faults.Timeout):
			time.Sleep(p.Dice.Between(0, 5*time.Millisecond))
			lostAck[i] = fmt.Errorf("%w: no ack in time (the message is stored): %w", errInjected, messagebus.ErrUnavailable)
		}
		run = append(run, i)
		if _, lost := lostAck[i]; lost && m.Key != "" {
			// Its later messages of the key are not sent: the broker
			// does not know the ack is lost, but the contract holds
			// the key back after a reported failure.
			flush()
		}
	}
	flush()
	if len(pe.Failed) == 0 {
		return nil
	}
	slices.SortFunc(pe.Failed, func(a, b messagebus.MessageError) int { return a.Index - b.Index })
	return pe
}
