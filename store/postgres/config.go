package postgres

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Config configures a Store. The zero value means defaults.
type Config struct {
	// Schema is the PostgreSQL schema holding the framework's tables;
	// Migrate creates it if needed. It must match ^[a-z_][a-z0-9_]{0,40}$
	// and not start with "pg_". Defaults to "", the connection's
	// search_path (usually public).
	Schema string
	// TablePrefix is prepended to every table, index, function and trigger
	// name, and to goose's version table, so the framework's tables can
	// live beside the application's own: "cqrs_" gives cqrs_events,
	// cqrs_streams, cqrs_outbox and so on. It must match
	// ^[a-z_][a-z0-9_]{0,40}$. Defaults to "cqrs_".
	TablePrefix string
	// Logger receives migration and diagnostic logs. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// HorizonWarnAfter is how old the read horizon (the oldest running
	// transaction that holds ReadAll back, see Store.ReadHorizon) may get
	// before a ReadAll that caught up logs a warning naming the backend
	// that holds it. The check runs at most every 10 s, and only after a
	// read that returned fewer events than asked for. Negative disables
	// it. Defaults to 30 s.
	HorizonWarnAfter time.Duration
	// MeterProvider receives the cqrskit.postgres.read_horizon.age gauge,
	// observed (one query) only when a metrics reader collects. Defaults
	// to otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

const maxPrefixLen = 38

// DefaultTablePrefix is the TablePrefix used when Config leaves it empty.
const DefaultTablePrefix = "cqrs_"

var identPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

const identRule = "lower-case letters, digits and underscores, at most 41 characters, not starting with a digit"

// withDefaults returns c with defaults filled in, or every problem found.
func (c Config) withDefaults() (Config, error) {
	c.TablePrefix = cmp.Or(c.TablePrefix, DefaultTablePrefix)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.HorizonWarnAfter = cmp.Or(c.HorizonWarnAfter, DefaultHorizonWarnAfter)
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	var errs []error
	if c.Schema != "" {
		if !identPattern.MatchString(c.Schema) {
			errs = append(errs, fmt.Errorf("postgres config: Schema %q: must match %s (%s)", c.Schema, identPattern, identRule))
		} else if strings.HasPrefix(c.Schema, "pg_") {
			errs = append(errs, fmt.Errorf("postgres config: Schema %q: names starting with pg_ are reserved by PostgreSQL", c.Schema))
		}
	}
	if !identPattern.MatchString(c.TablePrefix) {
		errs = append(errs, fmt.Errorf("postgres config: TablePrefix %q: must match %s (%s)", c.TablePrefix, identPattern, identRule))
	}
	// PostgreSQL truncates identifiers at 63 bytes; the longest name the
	// schema derives from the prefix is the prefix plus 25 bytes
	// ("events_stream_version_key"), and NOTIFY rejects a longer channel.
	if len(c.TablePrefix) > maxPrefixLen {
		errs = append(errs, fmt.Errorf("postgres config: TablePrefix %q: at most %d characters, so the derived table and constraint names fit PostgreSQL's 63-byte limit", c.TablePrefix, maxPrefixLen))
	} else if ch := notifyChannel(c); len(ch) > 63 {
		errs = append(errs, fmt.Errorf("postgres config: Schema %q with TablePrefix %q: the notification channel %q is %d bytes, PostgreSQL allows 63; shorten one of them", c.Schema, c.TablePrefix, ch, len(ch)))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
