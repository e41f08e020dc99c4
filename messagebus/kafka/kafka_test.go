package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/bustest"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
)

func cluster(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newBroker(t testing.TB, cfg kafka.Config) *kafka.Broker {
	t.Helper()
	if cfg.Brokers == nil {
		cfg.Brokers = cluster(t)
	}
	b, err := kafka.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestContract(t *testing.T) {
	bustest.Run(t, bustest.Features{OrderedRetry: true, MaxMessageBytes: 1_000_000},
		func(t *testing.T) messagebus.Broker {
			return newBroker(t, kafka.Config{Logger: slog.New(slog.DiscardHandler)})
		})
}

func TestConnectUnreachable(t *testing.T) {
	start := time.Now()
	_, err := kafka.New(t.Context(), kafka.Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !errors.Is(err, messagebus.ErrUnavailable) {
		t.Fatalf("New with an unreachable broker = %v, want ErrUnavailable naming it", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("New took %s", took)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		cfg   kafka.Config
		field string
	}{
		{kafka.Config{Brokers: []string{"nohost"}}, "Brokers[0]"},
		{kafka.Config{Partitions: -1}, "Partitions"},
		{kafka.Config{ReplicationFactor: -3}, "ReplicationFactor"},
		{kafka.Config{MaxMessageBytes: -1}, "MaxMessageBytes"},
		{kafka.Config{RetryDelay: -time.Second}, "RetryDelay"},
		{kafka.Config{MaxDeliveries: -1}, "MaxDeliveries"},
	} {
		_, err := kafka.New(t.Context(), tt.cfg)
		var ve *messagebus.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("New(%+v) = %v, want a *ValidationError for %s", tt.cfg, err, tt.field)
		}
	}
}

func TestDisableTopicCreation(t *testing.T) {
	b := newBroker(t, kafka.Config{DisableTopicCreation: true, PublishTimeout: 2 * time.Second})
	err := b.Publish(t.Context(), messagebus.Message{ID: "1", Topic: "missing", Key: "k"})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Publish to a missing topic = %v, want an error naming it", err)
	}
}

func TestBrokerDownPublishFails(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, kafka.Config{Brokers: c.ListenAddrs(), PublishTimeout: time.Second, DialTimeout: 500 * time.Millisecond})
	if err := b.Publish(t.Context(), messagebus.Message{ID: "1", Topic: "t", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = b.Publish(ctx, messagebus.Message{ID: "2", Topic: "t", Key: "k"})
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) || !errors.Is(err, messagebus.ErrUnavailable) {
		t.Fatalf("Publish with the cluster down = %v, want a *PublishError saying the broker is unavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Publish took %s with PublishTimeout 1s", took)
	}
	t.Logf("%v (after %s)", err, time.Since(start).Round(time.Millisecond))
}
