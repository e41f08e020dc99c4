-- cqrskit SQLite schema, version 1.
-- Times are INTEGER Unix nanoseconds (UTC). Event and handler IDs are UUID
-- text. Metadata and headers are JSON text.

-- +goose Up

-- One row per stream: its type and current version, the row every append
-- checks and updates.
CREATE TABLE IF NOT EXISTS {{.Prefix}}streams (
    stream_id   TEXT    NOT NULL PRIMARY KEY,
    stream_type TEXT    NOT NULL DEFAULT '',
    version     INTEGER NOT NULL CHECK (version >= 0)
) STRICT, WITHOUT ROWID;

-- The global log. SQLite has one writer at a time, so positions are
-- assigned and committed in order: "position > last" never skips an event.
CREATE TABLE IF NOT EXISTS {{.Prefix}}events (
    position       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    stream_type    TEXT    NOT NULL DEFAULT '',
    version        INTEGER NOT NULL CHECK (version >= 1),
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    data           BLOB    NOT NULL,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    recorded_at    INTEGER NOT NULL,
    UNIQUE (stream_id, version)
) STRICT;

-- Events waiting to be published, written in the append's transaction and
-- deleted by the relay once the broker has acknowledged them.
CREATE TABLE IF NOT EXISTS {{.Prefix}}outbox (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_position INTEGER NOT NULL REFERENCES {{.Prefix}}events (position),
    created_at     INTEGER NOT NULL
) STRICT;

-- The latest snapshot per stream.
CREATE TABLE IF NOT EXISTS {{.Prefix}}snapshots (
    stream_id      TEXT    NOT NULL PRIMARY KEY,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    data           BLOB    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- Idempotent handlers' marks: one row per (handler, event) handled.
CREATE TABLE IF NOT EXISTS {{.Prefix}}processed (
    handler      TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (handler, event_id)
) STRICT, WITHOUT ROWID;

-- Messages a handler gave up on, kept for inspection and replay.
CREATE TABLE IF NOT EXISTS {{.Prefix}}dead_letters (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    handler         TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    topic           TEXT    NOT NULL DEFAULT '',
    payload         BLOB    NOT NULL,
    headers         TEXT    NOT NULL DEFAULT '{}',
    error           TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    first_failed_at INTEGER NOT NULL,
    last_failed_at  INTEGER NOT NULL,
    UNIQUE (handler, event_id)
) STRICT;

-- Projection checkpoints: the cursor after the last event a projection
-- applied.
CREATE TABLE IF NOT EXISTS {{.Prefix}}checkpoints (
    name       TEXT    NOT NULL PRIMARY KEY,
    tx_id      INTEGER NOT NULL DEFAULT 0,
    position   INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Relay leadership: the relay holding an unexpired lease publishes; others
-- wait as standbys.
CREATE TABLE IF NOT EXISTS {{.Prefix}}relay_leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE IF EXISTS {{.Prefix}}relay_leases;
DROP TABLE IF EXISTS {{.Prefix}}checkpoints;
DROP TABLE IF EXISTS {{.Prefix}}dead_letters;
DROP TABLE IF EXISTS {{.Prefix}}processed;
DROP TABLE IF EXISTS {{.Prefix}}snapshots;
DROP TABLE IF EXISTS {{.Prefix}}outbox;
DROP TABLE IF EXISTS {{.Prefix}}events;
DROP TABLE IF EXISTS {{.Prefix}}streams;
