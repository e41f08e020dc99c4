package natsjs_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// storedIDs returns the Nats-Msg-Id of every message in stream, per
// subject, in stream order.
func storedIDs(t *testing.T, js jetstream.JetStream, stream string) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[m.Subject] = append(out[m.Subject], m.Header.Get(natsjs.HeaderMsgID))
	}
	return out
}

// TestKeyOrderAfterRejectionAfterSend: the server rejects a message after
// it was sent (here: the stream's max_msg_size lowered behind the broker's
// back, so its own size check passes). The key's later message must not be
// stored, or a retry would store the key as 1, 3, 2; other keys are not
// held up.
func TestKeyOrderAfterRejectionAfterSend(t *testing.T) {
	for _, srv := range []struct {
		name string
		url  func(testing.TB) string
	}{{"inprocess", natstest.URL}, {"machine", natstest.Machine}} {
		t.Run(srv.name, func(t *testing.T) {
			url := srv.url(t)
			suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
			stream, prefix := "ORDER_"+suffix, "order_"+suffix
			b := newBroker(t, url, natsjs.Config{Stream: stream, SubjectPrefix: prefix, Logger: slog.New(slog.DiscardHandler)})

			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			s, err := js.Stream(t.Context(), stream)
			if err != nil {
				t.Fatal(err)
			}
			sc := s.CachedInfo().Config
			sc.MaxMsgSize = 2048
			if _, err := js.UpdateStream(t.Context(), sc); err != nil {
				t.Fatal(err)
			}

			msg := func(key string, size int) messagebus.Message {
				return messagebus.Message{ID: uuid.NewString(), Topic: "t", Key: key, Payload: make([]byte, size)}
			}
			// k: v1 small, v2 over the server's new limit, v3 small; the
			// other keys interleave and come after.
			msgs := []messagebus.Message{
				msg("k", 10), msg("a", 10), msg("k", 4096), msg("b", 10), msg("k", 10),
				msg("a", 10), msg("b", 10), msg("c", 10), msg("k", 10),
			}
			err = b.Publish(t.Context(), msgs...)
			var pe *messagebus.PublishError
			if !errors.As(err, &pe) || !slices.Equal(pe.Indexes(), []int{2, 4, 8}) {
				t.Fatalf("Publish = %v, want a *PublishError for msgs 2, 4 and 8", err)
			}
			if !errors.Is(pe.Failed[0], messagebus.ErrMessageTooLarge) {
				t.Errorf("msgs[2] error = %v, want the server's rejection as ErrMessageTooLarge", pe.Failed[0].Err)
			}
			for _, f := range pe.Failed[1:] {
				if !errors.Is(f, messagebus.ErrEarlierFailed) || !strings.Contains(f.Error(), msgs[2].ID) {
					t.Errorf("msgs[%d] error = %v, want ErrEarlierFailed naming msgs[2]", f.Index, f.Err)
				}
			}

			got := storedIDs(t, js, stream)
			want := map[string][]string{
				prefix + ".t.k": {msgs[0].ID},
				prefix + ".t.a": {msgs[1].ID, msgs[5].ID},
				prefix + ".t.b": {msgs[3].ID, msgs[6].ID},
				prefix + ".t.c": {msgs[7].ID},
			}
			for subj, ids := range want {
				if !slices.Equal(got[subj], ids) {
					t.Errorf("stream holds %v on %s, want %v", got[subj], subj, ids)
				}
			}
			if len(got) != len(want) {
				t.Errorf("stream holds subjects %v, want %d", got, len(want))
			}
		})
	}
}
