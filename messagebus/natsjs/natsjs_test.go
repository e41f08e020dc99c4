package natsjs_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/bustest"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// newBroker returns a broker on its own stream and subject prefix, closed
// and deleted at cleanup, so tests can share a server.
func newBroker(t testing.TB, url string, cfg natsjs.Config) *natsjs.Broker {
	t.Helper()
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	cfg.URL = url
	if cfg.Stream == "" {
		cfg.Stream = "CQRSKIT_TEST_" + suffix
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = "cqrskit_test_" + suffix
	}
	b, err := natsjs.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("natsjs.New: %v", err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		deleteStream(t, url, cfg.Stream)
	})
	return b
}

func deleteStream(t testing.TB, url, stream string) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return // the server is gone with its streams
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Logf("delete stream %s: %v", stream, err)
	}
}

func maxPayload(t *testing.T, url string) int {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	return int(nc.MaxPayload())
}

func contract(t *testing.T, url string, cfg natsjs.Config, orderedRetry bool) {
	bustest.Run(t, bustest.Features{Dedup: true, OrderedRetry: orderedRetry, MaxMessageBytes: maxPayload(t, url)},
		func(t *testing.T) messagebus.Broker {
			cfg := cfg
			cfg.Logger = slog.New(slog.DiscardHandler) // handler failures are the point
			return newBroker(t, url, cfg)
		})
}

func TestContractInProcess(t *testing.T) {
	contract(t, natstest.URL(t), natsjs.Config{}, true)
}

func TestContractInProcessNakOnError(t *testing.T) {
	contract(t, natstest.URL(t), natsjs.Config{NakOnError: true}, false)
}

func TestContractMachine(t *testing.T) {
	contract(t, natstest.Machine(t), natsjs.Config{}, true)
}

func TestOutage(t *testing.T) {
	srv := natstest.Start(t)
	b := newBroker(t, srv.URL, natsjs.Config{PublishTimeout: 3 * time.Second})
	topic := "outage"
	msg := func(seq int) messagebus.Message {
		return messagebus.Message{ID: uuid.NewString(), Topic: topic, Key: "stream-1", Payload: []byte{byte(seq)}}
	}
	got := make(chan messagebus.Delivery, 100)
	sub, err := b.Subscribe(t.Context(), topic, "g", func(_ context.Context, d messagebus.Delivery) error {
		got <- d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	before := msg(1)
	if err := b.Publish(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	receive(t, got, before.ID)

	srv.Shutdown()
	start := time.Now()
	down := []messagebus.Message{msg(2), msg(3)}
	err = b.Publish(t.Context(), down...)
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || !errors.Is(err, messagebus.ErrUnavailable) {
		t.Fatalf("Publish while the server is down = %v, want a *PublishError of 2 with ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error %q does not name the server %s", err, srv.URL)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Publish took %s to fail while the server was down, want it to fail at once", took)
	}
	t.Logf("publish during outage: %v (after %s)", err, time.Since(start).Round(time.Millisecond))

	srv.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := b.Publish(ctx, down...) // the relay's retry of the failed rows
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish still failing 30s after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The subscription survived the outage and the stream its messages.
	receive(t, got, down[0].ID, down[1].ID)
}

func TestSubscriptionAcrossServerRestart(t *testing.T) {
	// A publisher keeps going while the server shuts down and comes back.
	// The server ends the open pull with "409 Server Shutdown" but goes on
	// delivering to it for a moment: those messages count as delivered and
	// never reach the handler, so they come back only after AckWait. The
	// subscriber must still get every message, once, each key in order.
	srv := natstest.Start(t)
	b := newBroker(t, srv.URL, natsjs.Config{AckWait: 2 * time.Second})
	const keys, perKey = 10, 300
	var (
		mu    sync.Mutex
		seen  = map[string]int{}
		byKey = map[string][]int{}
	)
	all := make(chan struct{})
	sub, err := b.Subscribe(t.Context(), "restart", "g", func(_ context.Context, d messagebus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		seen[d.ID]++
		n, _ := strconv.Atoi(string(d.Payload))
		byKey[d.Key] = append(byKey[d.Key], n)
		if len(seen) == keys*perKey {
			close(all)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())

	// Publish like the outbox relay: batches in order, a failed batch
	// again with the same IDs until it is stored.
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < perKey; i += 2 {
			var batch []messagebus.Message
			for n := i; n < i+2; n++ {
				for k := range keys {
					batch = append(batch, messagebus.Message{ID: uuid.NewString(), Topic: "restart",
						Key: "k" + strconv.Itoa(k), Payload: []byte(strconv.Itoa(n))})
				}
			}
			for b.Publish(t.Context(), batch...) != nil {
				if t.Context().Err() != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries before the restart, want 200", n)
		}
		time.Sleep(time.Millisecond)
	}
	srv.Shutdown()
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	<-published

	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages delivered", len(seen), keys*perKey)
	}
	time.Sleep(3 * time.Second) // past AckWait: a message delivered twice would be back now
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s delivered %d times", id, n)
		}
	}
	for k, got := range byKey {
		for i, n := range got {
			if n != i {
				t.Errorf("key %s: delivery %d carries #%d; want each key in order: %v", k, i, n, got)
				break
			}
		}
	}
}

func TestAckSentAfterReconnect(t *testing.T) {
	// The handler finishes while the server is down: the ack cannot go
	// out then. It must go out after the restart, or the message comes
	// back after AckWait although it was handled.
	srv := natstest.Start(t)
	b := newBroker(t, srv.URL, natsjs.Config{AckWait: time.Second})
	got := make(chan messagebus.Delivery, 10)
	release := make(chan struct{})
	sub, err := b.Subscribe(t.Context(), "ack", "g", func(_ context.Context, d messagebus.Delivery) error {
		got <- d
		if d.Attempt == 1 {
			<-release
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	m := messagebus.Message{ID: uuid.NewString(), Topic: "ack", Key: "k"}
	if err := b.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	receive(t, got, m.ID)
	srv.Shutdown()
	// Release the handler once the client knows it is disconnected, so
	// the ack fails rather than vanishing into the dead socket (that ack
	// is lost for good: delivery is at least once).
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		err := b.Publish(ctx, messagebus.Message{ID: uuid.NewString(), Topic: "probe", Key: "k"})
		cancel()
		if errors.Is(err, messagebus.ErrUnavailable) {
			break
		}
	}
	close(release)
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	select {
	case d := <-got:
		t.Fatalf("handled message %s delivered again (attempt %d)", d.ID, d.Attempt)
	case <-time.After(3 * time.Second): // AckWait and then some
	}
}

func receive(t *testing.T, got <-chan messagebus.Delivery, ids ...string) {
	t.Helper()
	for _, id := range ids {
		select {
		case d := <-got:
			if d.ID != id {
				t.Fatalf("got message %s, want %s", d.ID, id)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("message %s not delivered", id)
		}
	}
}

func TestPublishWithoutAck(t *testing.T) {
	// The stream is gone and a plain subscriber swallows its subjects: the
	// server is up, but no ack ever comes. Publish must give up at the
	// context's deadline or at PublishTimeout, whichever comes first.
	url := natstest.URL(t)
	b := newBroker(t, url, natsjs.Config{Stream: "NOACK", SubjectPrefix: "noack", PublishTimeout: 700 * time.Millisecond})
	deleteStream(t, url, "NOACK")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("noack.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	msg := func() messagebus.Message { return messagebus.Message{ID: uuid.NewString(), Topic: "t", Key: "k"} }

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Publish(ctx, msg(), msg())
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish without acks = %v, want a *PublishError of 2 with the context's deadline", err)
	}
	if took := time.Since(start); took > 600*time.Millisecond {
		t.Errorf("Publish returned after %s, want about the context's 200ms", took)
	}

	start = time.Now()
	err = b.Publish(t.Context(), msg())
	if !errors.Is(err, messagebus.ErrUnavailable) || !strings.Contains(err.Error(), "no ack") {
		t.Fatalf("Publish without acks = %v, want ErrUnavailable after PublishTimeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Publish returned after %s, want about PublishTimeout (700ms)", took)
	}
	t.Logf("%v (after %s)", err, time.Since(start).Round(time.Millisecond))
}

func TestConnectUnreachable(t *testing.T) {
	for _, url := range []string{"nats://127.0.0.1:1", "nats://no-such-host.invalid:4222"} {
		start := time.Now()
		_, err := natsjs.New(t.Context(), natsjs.Config{URL: url, ConnectTimeout: time.Second})
		if err == nil {
			t.Fatalf("New(%s) succeeded", url)
		}
		if !strings.Contains(err.Error(), url) || !errors.Is(err, messagebus.ErrUnavailable) {
			t.Errorf("New(%s) = %v, want an ErrUnavailable naming the URL", url, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("New(%s) took %s", url, took)
		}
	}
}

func TestConnectRedactsPassword(t *testing.T) {
	_, err := natsjs.New(t.Context(), natsjs.Config{URL: "nats://alice:s3cret@127.0.0.1:1", ConnectTimeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("New = %v, want an error naming the server without the password", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   natsjs.Config
		field string
	}{
		{"stream with dot", natsjs.Config{Stream: "a.b"}, "Stream"},
		{"prefix with space", natsjs.Config{SubjectPrefix: "a b"}, "SubjectPrefix"},
		{"prefix wildcard", natsjs.Config{SubjectPrefix: "a.*"}, "SubjectPrefix"},
		{"storage", natsjs.Config{Storage: 7}, "Storage"},
		{"negative ack wait", natsjs.Config{AckWait: -time.Second}, "AckWait"},
		{"tiny ack wait", natsjs.Config{AckWait: time.Millisecond}, "AckWait"},
		{"negative retry delay", natsjs.Config{RetryDelay: -1}, "RetryDelay"},
		{"negative retry horizon", natsjs.Config{RetryHorizon: -time.Second}, "RetryHorizon"},
		{"negative max deliveries", natsjs.Config{MaxDeliveries: -1}, "MaxDeliveries"},
		{"duplicate window over max age", natsjs.Config{MaxAge: time.Minute, DuplicateWindow: time.Hour}, "DuplicateWindow"},
		{"replicas", natsjs.Config{Replicas: 9}, "Replicas"},
		{"fetch batch", natsjs.Config{FetchBatch: -5}, "FetchBatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.URL = "nats://127.0.0.1:1" // never dialled: validation comes first
			_, err := natsjs.New(t.Context(), tt.cfg)
			var ve *messagebus.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("New = %v, want a *ValidationError for %s", err, tt.field)
			}
		})
	}
	// Every problem is reported at once.
	_, err := natsjs.New(t.Context(), natsjs.Config{Stream: "a.b", AckWait: -1, Replicas: 9})
	for _, f := range []string{"Stream", "AckWait", "Replicas"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("New with three bad fields = %v, want %s named", err, f)
		}
	}
}

func TestUseExistingStream(t *testing.T) {
	url := natstest.URL(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	_, err = natsjs.New(t.Context(), natsjs.Config{URL: url, Stream: "MISSING", UseExistingStream: true})
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), "MISSING") {
		t.Fatalf("New with a missing existing stream = %v, want stream-not-found naming it", err)
	}

	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err = natsjs.New(t.Context(), natsjs.Config{URL: url, Stream: "OTHER", UseExistingStream: true})
	if err == nil || !strings.Contains(err.Error(), "cqrskit.>") {
		t.Fatalf("New with a stream not capturing the prefix = %v, want an error naming cqrskit.>", err)
	}

	// An existing stream is used as it is, its own settings kept.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "MINE", Subjects: []string{"app.>"}, MaxMsgs: 12345, MaxMsgSize: 1000, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	b, err := natsjs.New(t.Context(), natsjs.Config{URL: url, Stream: "MINE", SubjectPrefix: "app", UseExistingStream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Publish(t.Context(), messagebus.Message{ID: "1", Topic: "t", Payload: make([]byte, 2000)})
	var tl *messagebus.MessageTooLargeError
	if !errors.As(err, &tl) || tl.Limit != 1000 || !strings.Contains(tl.What, "max_msg_size") {
		t.Fatalf("Publish over the stream's max_msg_size = %v, want a *MessageTooLargeError with limit 1000", err)
	}
	if err := b.Publish(t.Context(), messagebus.Message{ID: "2", Topic: "t", Payload: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(t.Context(), "MINE")
	info, _ := s.Info(t.Context())
	if info.Config.MaxMsgs != 12345 || info.Config.Duplicates != time.Minute || info.State.Msgs != 1 {
		t.Fatalf("stream after use: max msgs %d, duplicates %s, %d messages; want 12345, 1m, 1", info.Config.MaxMsgs, info.Config.Duplicates, info.State.Msgs)
	}

	// Without UseExistingStream the stream gets what the broker needs and
	// keeps the rest.
	b2, err := natsjs.New(t.Context(), natsjs.Config{URL: url, Stream: "MINE", SubjectPrefix: "more"})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	info, _ = s.Info(t.Context())
	if info.Config.MaxMsgs != 12345 || info.Config.Duplicates != 2*time.Minute ||
		strings.Join(info.Config.Subjects, ",") != "app.>,more.>" {
		t.Fatalf("stream after provisioning: %+v", info.Config)
	}
}

func TestSubjectsAndConsumer(t *testing.T) {
	url := natstest.URL(t)
	b := newBroker(t, url, natsjs.Config{Stream: "SUBJ", SubjectPrefix: "app"})
	msgs := []messagebus.Message{
		{ID: "1", Topic: "product", Key: "product-0190abcd"},
		{ID: "2", Topic: "product.audit", Key: "product-0190abcd"},
		{ID: "3", Topic: "product", Key: "odd key.with*chars"},
		{ID: "4", Topic: "product", Key: ""},
	}
	if err := b.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, _ := js.Stream(t.Context(), "SUBJ")
	// Order holds per key only: the two messages of product-0190abcd are
	// sent one after the other, the rest alongside.
	subjectOf := map[string]string{}
	for seq := uint64(1); seq <= 4; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		subjectOf[m.Header.Get(natsjs.HeaderMsgID)] = m.Subject
	}
	subjects := make([]string, len(msgs))
	for i, m := range msgs {
		subjects[i] = subjectOf[m.ID]
	}
	if subjects[0] != "app.product.product-0190abcd" || subjects[1] != "app.product.audit.product-0190abcd" ||
		!strings.HasPrefix(subjects[2], "app.product.odd_key_with_chars~") || subjects[3] != "app.product._" {
		t.Fatalf("subjects = %q", subjects)
	}

	// Topic "product" does not see "product.audit".
	got := make(chan messagebus.Delivery, 10)
	sub, err := b.Subscribe(t.Context(), "product", "billing", func(_ context.Context, d messagebus.Delivery) error {
		got <- d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	for _, want := range []messagebus.Message{msgs[0], msgs[2], msgs[3]} {
		select {
		case d := <-got:
			if d.ID != want.ID || d.Key != want.Key || d.Topic != "product" {
				t.Fatalf("got id %s key %q topic %s, want id %s key %q", d.ID, d.Key, d.Topic, want.ID, want.Key)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("timeout")
		}
	}
	select {
	case d := <-got:
		t.Fatalf("topic product got %s from %s", d.ID, d.Topic)
	case <-time.After(300 * time.Millisecond):
	}
	names := s.ConsumerNames(t.Context())
	for n := range names.Name() {
		if !strings.HasPrefix(n, "billing_product_") {
			t.Errorf("consumer name %q, want billing_product_<hash>", n)
		}
	}
}

func TestKeepAliveHoldsMessagesDuringLongHandler(t *testing.T) {
	// A handler slower than AckWait must not see its message (or the ones
	// fetched behind it) redelivered.
	url := natstest.URL(t)
	b := newBroker(t, url, natsjs.Config{AckWait: time.Second})
	var msgs []messagebus.Message
	for i := range 5 {
		msgs = append(msgs, messagebus.Message{ID: uuid.NewString(), Topic: "slow", Key: "k", Payload: []byte{byte(i)}})
	}
	if err := b.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	got := make(chan messagebus.Delivery, 20)
	sub, err := b.Subscribe(t.Context(), "slow", "g", func(_ context.Context, d messagebus.Delivery) error {
		got <- d
		if d.ID == msgs[0].ID {
			time.Sleep(2500 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	for i, m := range msgs {
		select {
		case d := <-got:
			if d.ID != m.ID || d.Attempt != 1 {
				t.Fatalf("delivery %d = %s attempt %d, want %s attempt 1", i, d.ID, d.Attempt, m.ID)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("timeout")
		}
	}
	select {
	case d := <-got:
		t.Fatalf("redelivered %s (attempt %d)", d.ID, d.Attempt)
	case <-time.After(1500 * time.Millisecond):
	}
}

func TestPublishBatchBeyondMaxPending(t *testing.T) {
	// More messages in one call than the client allows unacknowledged
	// (4,096): Publish waits for slots instead of failing.
	url := natstest.URL(t)
	b := newBroker(t, url, natsjs.Config{Stream: "BIG", SubjectPrefix: "big"})
	msgs := make([]messagebus.Message, 10_000)
	for i := range msgs {
		msgs[i] = messagebus.Message{ID: uuid.NewString(), Topic: "t", Key: "k" + strconv.Itoa(i%50), Payload: []byte("x")}
	}
	if err := b.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, _ := js.Stream(t.Context(), "BIG")
	info, err := s.Info(t.Context())
	if err != nil || info.State.Msgs != uint64(len(msgs)) {
		t.Fatalf("stream holds %d messages (%v), want %d", info.State.Msgs, err, len(msgs))
	}
}
