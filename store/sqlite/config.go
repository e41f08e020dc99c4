package sqlite

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
)

// Config configures a Store. The zero value means defaults.
type Config struct {
	// TablePrefix is prepended to every table name, including goose's
	// version table, so the framework's tables can share a database file
	// with the application's own: "cqrs_" gives cqrs_events, cqrs_streams,
	// cqrs_outbox and so on. It must match ^[a-z_][a-z0-9_]{0,40}$.
	// Defaults to "cqrs_".
	TablePrefix string
	// Logger receives migration and diagnostic logs. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// DefaultTablePrefix is the TablePrefix used when Config leaves it empty.
const DefaultTablePrefix = "cqrs_"

var prefixPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// withDefaults returns c with defaults filled in, or every problem found.
func (c Config) withDefaults() (Config, error) {
	c.TablePrefix = cmp.Or(c.TablePrefix, DefaultTablePrefix)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	if !prefixPattern.MatchString(c.TablePrefix) {
		errs = append(errs, fmt.Errorf("sqlite config: TablePrefix %q: must match %s (lower-case letters, digits and underscores, at most 41 characters, not starting with a digit)",
			c.TablePrefix, prefixPattern))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
