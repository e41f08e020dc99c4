package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
)

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	id := event.NewID()
	d := handler.DeadLetter{
		Handler: "projector", EventID: id, Topic: "product", Payload: []byte(`{"n":1}`),
		Headers: map[string]string{"Cqrs-Event-Type": "product.created"}, Error: "boom", Attempts: 3,
		FirstFailedAt: first, LastFailedAt: first.Add(time.Minute),
	}
	if err := s.PutDeadLetter(ctx, d); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDeadLetters(ctx, "", 0, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	got := list[0]
	if got.ID == 0 || got.Handler != d.Handler || got.EventID != id || got.Topic != d.Topic || string(got.Payload) != string(d.Payload) ||
		got.Headers["Cqrs-Event-Type"] != "product.created" || len(got.Headers) != 1 || got.Error != "boom" || got.Attempts != 3 ||
		!got.FirstFailedAt.Equal(first) || !got.LastFailedAt.Equal(first.Add(time.Minute)) || got.LastFailedAt.Location() != time.UTC {
		t.Errorf("stored %+v, put %+v", got, d)
	}

	// The same (handler, event) again: updated in place, first failure kept.
	again := d
	again.Error, again.Attempts, again.LastFailedAt = "boom again", 5, first.Add(time.Hour)
	again.Payload, again.Topic = []byte("other"), "other"
	if err := s.PutDeadLetter(ctx, again); err != nil {
		t.Fatal(err)
	}
	upd, err := s.GetDeadLetter(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != got.ID || upd.Error != "boom again" || upd.Attempts != 5 || !upd.LastFailedAt.Equal(first.Add(time.Hour)) ||
		!upd.FirstFailedAt.Equal(first) || string(upd.Payload) != `{"n":1}` || upd.Topic != "product" {
		t.Errorf("after upsert: %+v", upd)
	}

	// Zero times mean now; nil headers and payload are fine.
	before := time.Now().Add(-time.Minute)
	for _, h := range []string{"mailer", "mailer", "projector"} {
		if err := s.PutDeadLetter(ctx, handler.DeadLetter{Handler: h, EventID: event.NewID(), Error: "x", Attempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListDeadLetters(ctx, "", 0, 10)
	if err != nil || len(all) != 4 {
		t.Fatalf("list all: %d, %v", len(all), err)
	}
	for i, dl := range all {
		if i > 0 && dl.ID <= all[i-1].ID {
			t.Errorf("not in ID order: %d after %d", dl.ID, all[i-1].ID)
		}
	}
	if z := all[1]; z.FirstFailedAt.Before(before) || !z.FirstFailedAt.Equal(z.LastFailedAt) || z.Headers != nil || len(z.Payload) != 0 {
		t.Errorf("defaults: %+v", z)
	}
	mailer, err := s.ListDeadLetters(ctx, "mailer", 0, 10)
	if err != nil || len(mailer) != 2 || mailer[0].Handler != "mailer" || mailer[1].Handler != "mailer" {
		t.Errorf("list mailer: %+v, %v", mailer, err)
	}
	page, err := s.ListDeadLetters(ctx, "", all[1].ID, 2)
	if err != nil || len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
		t.Errorf("page after %d: %+v, %v", all[1].ID, page, err)
	}
	if err := s.PutDeadLetter(ctx, handler.DeadLetter{EventID: event.NewID()}); err == nil {
		t.Error("PutDeadLetter without a handler name: no error")
	}
	if _, err := s.ListDeadLetters(ctx, "", 0, 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("limit 0: %v", err)
	}

	if err := s.DeleteDeadLetter(ctx, got.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeadLetter(ctx, got.ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := s.GetDeadLetter(ctx, got.ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	// Deleted, the same (handler, event) can be dead-lettered anew.
	if err := s.PutDeadLetter(ctx, d); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListDeadLetters(ctx, "projector", 0, 10); len(l) != 2 {
		t.Errorf("projector dead letters after re-put: %d", len(l))
	}
}
