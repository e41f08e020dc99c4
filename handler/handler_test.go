package handler

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

func TestRetryPolicyValidation(t *testing.T) {
	tests := []struct {
		name    string
		p       RetryPolicy
		wantErr []string // fields named in the error
		check   func(t *testing.T, p RetryPolicy)
	}{
		{name: "zero means defaults", check: func(t *testing.T, p RetryPolicy) {
			if p != DefaultRetryPolicy {
				t.Errorf("got %+v, want %+v", p, DefaultRetryPolicy)
			}
		}},
		{name: "negative jitter turns it off", p: RetryPolicy{Jitter: -1}, check: func(t *testing.T, p RetryPolicy) {
			if p.Jitter != 0 {
				t.Errorf("Jitter %v, want 0", p.Jitter)
			}
		}},
		{name: "long initial delay raises the default max", p: RetryPolicy{InitialDelay: time.Minute}, check: func(t *testing.T, p RetryPolicy) {
			if p.MaxDelay != time.Minute {
				t.Errorf("MaxDelay %s, want 1m", p.MaxDelay)
			}
		}},
		{name: "negative max attempts kept (never dead-letter)", p: RetryPolicy{MaxAttempts: -1}, check: func(t *testing.T, p RetryPolicy) {
			if p.MaxAttempts != -1 || p.exhausted(1_000_000) {
				t.Errorf("MaxAttempts %d exhausted", p.MaxAttempts)
			}
		}},
		{name: "every problem reported",
			p:       RetryPolicy{InitialDelay: -1, MaxDelay: -1, Multiplier: 0.5, Jitter: 1.5, InProcess: -2},
			wantErr: []string{"InitialDelay", "MaxDelay", "Multiplier", "Jitter", "InProcess"}},
		{name: "max below initial", p: RetryPolicy{InitialDelay: time.Second, MaxDelay: time.Millisecond}, wantErr: []string{"MaxDelay"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.p.withDefaults()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error for %+v", tc.p)
				}
				for _, f := range tc.wantErr {
					if !strings.Contains(err.Error(), "RetryPolicy."+f) {
						t.Errorf("error %q does not name %s", err, f)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

func TestRetryDelay(t *testing.T) {
	p, err := RetryPolicy{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second, Multiplier: 2, Jitter: -1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond,
		5: time.Second, 1000: time.Second, 0: 100 * time.Millisecond} {
		if got := p.delay(n); got != want {
			t.Errorf("delay(%d) without jitter = %s, want %s", n, got, want)
		}
	}
	p.Jitter = 0.5
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := p.delay(2)
		lo, hi = min(lo, d), max(hi, d)
		if got := p.delay(4); got > time.Second {
			t.Fatalf("jittered delay above MaxDelay: %s", got)
		}
	}
	if lo < 100*time.Millisecond || lo > 120*time.Millisecond || hi > 300*time.Millisecond || hi < 280*time.Millisecond {
		t.Errorf("jitter range of delay(2) over 2000 draws: [%s, %s], want about [100ms, 300ms]", lo, hi)
	}
}

func TestPermanent(t *testing.T) {
	cause := errors.New("bad price")
	err := Permanent(cause)
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, cause) || err.Error() != "bad price" {
		t.Errorf("Permanent(%v) = %v", cause, err)
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

func TestIdempotentValidation(t *testing.T) {
	_, err := Idempotent(Config{RetryPolicy: RetryPolicy{Multiplier: -1}, UnknownEvents: 7})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`Config.Name ""`, "Config.Store", "Config.Func",
		"RetryPolicy.Multiplier = -1", "Config.UnknownEvents = 7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestForUnregistered(t *testing.T) {
	type unknown struct{}
	if _, err := For(event.NewRegistry(nil), func(context.Context, *sql.Tx, event.Event, unknown) error { return nil }); !errors.Is(err, event.ErrUnknownEventType) {
		t.Errorf("For an unregistered type: %v, want ErrUnknownEventType", err)
	}
}

func TestDecodeNotAnEvent(t *testing.T) {
	_, err := decode(messagebus.Message{ID: "x", Topic: "t"})
	var de *event.DecodeError
	if !errors.Is(err, event.ErrDecode) || !errors.As(err, &de) || !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("decode of a message that is not an event: %v", err)
	}
	e := event.Event{ID: event.NewID(), StreamID: "s", Version: 3, Type: "t", SchemaVersion: 2, Data: []byte("{}")}
	got, err := decode(envelope.Message(e, "t"))
	if err != nil || got.ID != e.ID || got.Version != 3 || got.SchemaVersion != 2 {
		t.Errorf("decode of a relayed event: %+v, %v", got, err)
	}
}

func TestDeadLetterMessage(t *testing.T) {
	id := messageEventID("order-17")
	if id != messageEventID("order-17") || id == messageEventID("order-18") {
		t.Error("derived event IDs are not stable and distinct")
	}
	l := DeadLetter{EventID: id, Topic: "t", Payload: []byte("p"),
		Headers: map[string]string{HeaderMessageID: "order-17", envelope.HeaderStreamID: "s"}}
	m := l.Message()
	if m.ID != "order-17" || m.Key != "s" || m.Topic != "t" || string(m.Payload) != "p" || len(m.Headers) != 1 {
		t.Errorf("Message() = %+v", m)
	}
	if _, ok := l.Headers[HeaderMessageID]; !ok {
		t.Error("Message() changed the dead letter's headers")
	}
}

func TestConfigValidation(t *testing.T) {
	fn := func(context.Context, *sql.Tx, event.Event) error { return nil }
	store := nopStore{}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // each must appear in the error
	}{
		{name: "minimal", cfg: Config{Name: "h", Store: store, Func: fn}},
		{name: "name not UTF-8", cfg: Config{Name: "\xff", Store: store, Func: fn}, wantErr: []string{`Config.Name "\xff"`}},
		{name: "unknown events out of range", cfg: Config{Name: "h", Store: store, Func: fn, UnknownEvents: -1},
			wantErr: []string{"Config.UnknownEvents = -1"}},
		{name: "retry policy", cfg: Config{Name: "h", Store: store, Func: fn, RetryPolicy: RetryPolicy{InProcess: -2}},
			wantErr: []string{"RetryPolicy.InProcess = -2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Idempotent(tc.cfg)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if h.Policy() != DefaultRetryPolicy || h.log == nil || h.now == nil || h.sleep == nil || h.unknown != RetryUnknownEvents {
					t.Errorf("zero optional fields did not take their defaults: %+v", h)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error for %+v", tc.cfg)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestBatcherConfigValidation(t *testing.T) {
	h, err := Idempotent(Config{Name: "h", Store: nopStore{}, Func: func(context.Context, *sql.Tx, event.Event) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBatcher(h, BatcherConfig{MaxBatch: -1, MaxWait: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "BatcherConfig.MaxBatch = -1") || !strings.Contains(err.Error(), "BatcherConfig.MaxWait = -1s") {
		t.Errorf("NewBatcher with negative fields: %v; want an error naming each", err)
	}
	if _, err := NewBatcher(nil, BatcherConfig{}); err == nil {
		t.Error("NewBatcher(nil): no error")
	}
}

// nopStore is a Store for validation tests; it is never called.
type nopStore struct{ Store }
