package sqlite

import "strings"

// queries holds the store's SQL with the table prefix applied.
type queries struct {
	eventsTable, outboxTable, snapshotsTable string

	head          string
	streamVersion string
	streamExists  string
	upsertStream  string
	loadPage      string
	readAll       string

	saveSnapshot string
	loadSnapshot string

	pending     string
	outboxStats string
}

const eventColumns = "position, id, stream_id, stream_type, version, type, schema_version, data, metadata, recorded_at"

// loadColumns are eventColumns less stream_id, which Load knows: every
// column costs the driver calls per row.
const loadColumns = "position, id, stream_type, version, type, schema_version, data, metadata, recorded_at"

func newQueries(p string) queries {
	r := strings.NewReplacer("{p}", p, "{cols}", eventColumns, "{ecols}", prefixed("e.", eventColumns))
	return queries{
		eventsTable:    p + "events",
		outboxTable:    p + "outbox",
		snapshotsTable: p + "snapshots",

		head: r.Replace(`SELECT coalesce((SELECT version FROM {p}streams WHERE stream_id = ?), 0),
			e.stream_id, e.version FROM (SELECT 1) LEFT JOIN {p}events e ON e.id = ?`),
		streamVersion: r.Replace(`SELECT version FROM {p}streams WHERE stream_id = ?`),
		streamExists:  r.Replace(`SELECT EXISTS (SELECT 1 FROM {p}streams WHERE stream_id = ? AND version > 0)`),
		upsertStream: r.Replace(`INSERT INTO {p}streams (stream_id, stream_type, version) VALUES (?, ?, ?)
			ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version`),
		loadPage: r.Replace(`SELECT ` + loadColumns + ` FROM {p}events
			WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?`),
		readAll: r.Replace(`SELECT {cols} FROM {p}events WHERE position > ? ORDER BY position LIMIT ?`),

		saveSnapshot: r.Replace(`INSERT INTO {p}snapshots (stream_id, version, schema_version, data, created_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (stream_id) DO UPDATE SET
				version = excluded.version, schema_version = excluded.schema_version,
				data = excluded.data, created_at = excluded.created_at
			WHERE excluded.version >= {p}snapshots.version`),
		loadSnapshot: r.Replace(`SELECT version, schema_version, data, created_at FROM {p}snapshots WHERE stream_id = ?`),

		// Rows of a stream with a parked row wait behind it.
		pending: r.Replace(`SELECT o.id, {ecols} FROM {p}outbox o
			JOIN {p}events e ON e.position = o.event_position
			WHERE NOT EXISTS (SELECT 1 FROM {p}outbox_parked p WHERE p.stream_id = e.stream_id)
			ORDER BY o.id LIMIT ?`),
		outboxStats: r.Replace(`SELECT count(*), coalesce(min(created_at), 0),
			(SELECT count(*) FROM {p}outbox_parked) FROM {p}outbox`),
	}
}

// insertEvents inserts rows events, returning each one's version and
// position.
func (q queries) insertEvents(rows int) string {
	return "INSERT INTO " + q.eventsTable +
		" (id, stream_id, stream_type, version, type, schema_version, data, metadata, recorded_at) VALUES " +
		placeholders(rows, 9) + " RETURNING version, position"
}

// insertOutbox inserts rows outbox rows of (event_position, created_at).
func (q queries) insertOutbox(rows int) string {
	return "INSERT INTO " + q.outboxTable + " (event_position, created_at) VALUES " + placeholders(rows, 2)
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// placeholders returns "(?, ?), (?, ?)" for rows=2, cols=2.
func placeholders(rows, cols int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(row+", ", rows-1) + row
}
