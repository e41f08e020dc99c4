package projection_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/store/memory"
)

// noCheckpoints satisfies CheckpointStore for validation tests only.
type noCheckpoints struct{}

func (noCheckpoints) DB() *sql.DB { return nil }
func (noCheckpoints) Checkpoint(context.Context, *sql.Tx, string) (event.Cursor, error) {
	return event.Cursor{}, nil
}
func (noCheckpoints) SaveCheckpoint(context.Context, *sql.Tx, string, event.Cursor) error { return nil }
func (noCheckpoints) DeleteCheckpoint(context.Context, *sql.Tx, string) error             { return nil }

func TestConfigValidation(t *testing.T) {
	apply := func(context.Context, *sql.Tx, event.Event) error { return nil }
	valid := projection.Config{Name: "p", Events: memory.New(), Checkpoints: noCheckpoints{}, Apply: apply}
	tests := []struct {
		name   string
		change func(*projection.Config)
		want   []string
	}{
		{"valid", func(*projection.Config) {}, nil},
		{"missing everything", func(c *projection.Config) { *c = projection.Config{} },
			[]string{"Name", "Events", "Checkpoints", "Apply"}},
		{"negative numbers", func(c *projection.Config) {
			c.BatchSize, c.PollInterval, c.MinBackoff, c.MaxBackoff = -1, -1, -1, -1
		}, []string{"BatchSize", "PollInterval", "MinBackoff", "MaxBackoff"}},
		{"min above max backoff", func(c *projection.Config) { c.MinBackoff, c.MaxBackoff = 2, 1 }, []string{"MinBackoff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			p, err := projection.New(cfg)
			if len(tc.want) == 0 {
				if err != nil || p.Name() != "p" {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
