package pubbatch

import (
	"errors"
	"slices"
	"testing"

	"github.com/cqrskit/cqrskit/messagebus"
)

// TestOneInFlightPerKey drives a Batch as a publisher does: a key's next
// message is admitted only after the previous one's ack, and a failure
// after sending stops the key.
func TestOneInFlightPerKey(t *testing.T) {
	keys := []string{"k", "a", "k", "b", "k", "", ""}
	msgs := make([]messagebus.Message, len(keys))
	for i, k := range keys {
		msgs[i] = messagebus.Message{ID: string(rune('0' + i)), Topic: "t", Key: k}
	}
	b := New(msgs)
	var sent []int
	for i := range msgs {
		if b.Next(i) {
			sent = append(sent, i)
		}
	}
	if !slices.Equal(sent, []int{0, 1, 3, 5, 6}) {
		t.Fatalf("sent first %v, want [0 1 3 5 6]: k's later messages wait, keyless ones do not", sent)
	}
	if next, ok := b.Done(0, nil); !ok || next != 2 || !b.Next(next) {
		t.Fatalf("after msgs[0]'s ack: next %d %v, want msgs[2] admitted", next, ok)
	}
	if _, ok := b.Done(2, errors.New("rejected after sending")); ok {
		t.Fatal("a failed message released its key's next one")
	}
	if b.Next(4) || !b.Failed(4) {
		t.Fatal("msgs[4] admitted after msgs[2] failed")
	}
	for _, i := range []int{1, 3, 5, 6} {
		b.Done(i, nil)
	}
	var pe *messagebus.PublishError
	if err := b.Err(); !errors.As(err, &pe) || !slices.Equal(pe.Indexes(), []int{2, 4}) || !errors.Is(pe.Failed[1], messagebus.ErrEarlierFailed) {
		t.Fatalf("Err = %v, want msgs 2 and 4 failed, 4 with ErrEarlierFailed", err)
	}
}

// TestHeldFailWithTheirKey: messages held behind a key fail with
// ErrEarlierFailed when the one in flight fails, and FailHeld fails the
// ones still held when the wait is abandoned.
func TestHeldFailWithTheirKey(t *testing.T) {
	msgs := []messagebus.Message{
		{ID: "1", Topic: "t", Key: "k"}, {ID: "2", Topic: "t", Key: "k"}, {ID: "3", Topic: "t", Key: "j"}, {ID: "4", Topic: "t", Key: "j"},
	}
	b := New(msgs)
	for i := range msgs {
		b.Next(i)
	}
	b.Done(0, errors.New("no ack"))
	if !errors.Is(b.errs[1], messagebus.ErrEarlierFailed) {
		t.Fatalf("held msgs[1] error = %v, want ErrEarlierFailed", b.errs[1])
	}
	// Done hands the released msgs[3] to the caller, who must send or fail
	// it: it is no longer held.
	if next, ok := b.Done(2, nil); !ok || next != 3 {
		t.Fatalf("Done(2) = %d, %v; want msgs[3] released", next, ok)
	}
	b.FailHeld(errors.New("abandoned"))
	if b.Failed(3) || b.Failed(2) {
		t.Fatalf("released msgs[3] failed by FailHeld, or acked msgs[2] failed")
	}
	b2 := New(msgs)
	for i := range msgs {
		b2.Next(i)
	}
	b2.FailHeld(errors.New("abandoned"))
	if !b2.Failed(1) || !b2.Failed(3) || b2.Failed(0) || b2.Failed(2) {
		t.Fatalf("FailHeld failed %v, want msgs 1 and 3", b2.errs)
	}
}
