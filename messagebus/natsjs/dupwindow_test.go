package natsjs_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDuplicateWindowNeverLowered: New raises a stream's duplicate window
// to DuplicateWindow but keeps a longer one an operator set, and warns
// when the window is shorter than RetryHorizon.
func TestDuplicateWindowNeverLowered(t *testing.T) {
	for _, srv := range []struct {
		name string
		url  func(testing.TB) string
	}{{"inprocess", natstest.URL}, {"machine", natstest.Machine}} {
		t.Run(srv.name, func(t *testing.T) {
			url := srv.url(t)
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			for _, tt := range []struct {
				name     string
				existing time.Duration // 0: no stream before New
				cfg      natsjs.Config
				want     time.Duration
				warn     bool
			}{
				{"longer kept", 10 * time.Minute, natsjs.Config{}, 10 * time.Minute, false},
				{"shorter raised", 30 * time.Second, natsjs.Config{}, 2 * time.Minute, false},
				{"existing stream used as is", 20 * time.Second, natsjs.Config{UseExistingStream: true}, 20 * time.Second, true},
				{"configured below horizon", 0, natsjs.Config{DuplicateWindow: 20 * time.Second}, 20 * time.Second, true},
				{"explicit horizon", 10 * time.Minute, natsjs.Config{RetryHorizon: time.Hour}, 10 * time.Minute, true},
			} {
				t.Run(tt.name, func(t *testing.T) {
					suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
					stream, prefix := "DUP_"+suffix, "dup_"+suffix
					if tt.existing > 0 {
						if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
							Name: stream, Subjects: []string{prefix + ".>"}, Duplicates: tt.existing,
						}); err != nil {
							t.Fatal(err)
						}
					}
					var logs logBuffer
					cfg := tt.cfg
					cfg.Stream, cfg.SubjectPrefix = stream, prefix
					cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
					newBroker(t, url, cfg)
					s, err := js.Stream(t.Context(), stream)
					if err != nil {
						t.Fatal(err)
					}
					info, err := s.Info(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					if got := info.Config.Duplicates; got != tt.want {
						t.Errorf("duplicate window after New = %s, want %s", got, tt.want)
					}
					warned := strings.Contains(logs.String(), "duplicate window is shorter than the retry horizon")
					if warned != tt.warn {
						t.Errorf("warning logged = %v, want %v; log:\n%s", warned, tt.warn, logs.String())
					}
					if warned && !strings.Contains(logs.String(), "duplicate_window="+tt.want.String()) {
						t.Errorf("warning does not name the window %s: %s", tt.want, logs.String())
					}
				})
			}
		})
	}
}
