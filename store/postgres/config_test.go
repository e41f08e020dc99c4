package postgres

import (
	"database/sql"
	"strings"
	"testing"
)

// dummyDB is never used: New does not touch the database.
var dummyDB, _ = sql.Open("pgx", "postgres://unused.invalid/none")

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; nil means valid
		prefix  string
	}{
		{name: "zero value", cfg: Config{}, prefix: "cqrs_"},
		{name: "schema and prefix", cfg: Config{Schema: "events_v2", TablePrefix: "app_"}, prefix: "app_"},
		{name: "underscore prefix", cfg: Config{TablePrefix: "_x"}, prefix: "_x"},
		{name: "upper-case schema", cfg: Config{Schema: "Cqrs"}, wantErr: []string{`Schema "Cqrs"`}},
		{name: "quote in prefix", cfg: Config{TablePrefix: `x"; DROP TABLE users; --`}, wantErr: []string{`TablePrefix "x\"; DROP`}},
		{name: "digit first", cfg: Config{TablePrefix: "1x_"}, wantErr: []string{`TablePrefix "1x_"`}},
		{name: "dotted schema", cfg: Config{Schema: "a.b"}, wantErr: []string{`Schema "a.b"`}},
		{name: "reserved schema", cfg: Config{Schema: "pg_stuff"}, wantErr: []string{"reserved"}},
		{name: "too long", cfg: Config{TablePrefix: strings.Repeat("a", 42)}, wantErr: []string{"TablePrefix", "at most 41"}},
		{name: "prefix too long for derived names", cfg: Config{TablePrefix: strings.Repeat("a", 39)}, wantErr: []string{"TablePrefix", "at most 38", "63-byte"}},
		{name: "channel too long", cfg: Config{Schema: strings.Repeat("s", 30), TablePrefix: strings.Repeat("p", 30)}, wantErr: []string{"notification channel", "PostgreSQL allows 63"}},
		{name: "every problem reported", cfg: Config{Schema: "A", TablePrefix: "B"}, wantErr: []string{`Schema "A"`, `TablePrefix "B"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(dummyDB, tt.cfg)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.cfg.TablePrefix != tt.prefix || s.cfg.Logger == nil {
					t.Errorf("defaults not filled: %+v", s.cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestNewNilDB(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}
