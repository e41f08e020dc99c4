-- cqrskit SQLite schema, version 2: parked outbox rows.

-- +goose Up
-- Outbox rows the broker rejected for good (too large, bad topic), moved
-- here by the relay with the broker's error. A parked row holds back the
-- later rows of its stream (the relay's read skips them) until an operator
-- retries it (back into the outbox under its id) or discards it.
CREATE TABLE IF NOT EXISTS {{.Prefix}}outbox_parked (
    id             INTEGER NOT NULL PRIMARY KEY,
    event_position INTEGER NOT NULL REFERENCES {{.Prefix}}events (position),
    stream_id      TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    reason         TEXT    NOT NULL,
    parked_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS {{.Prefix}}outbox_parked_stream_idx
    ON {{.Prefix}}outbox_parked (stream_id);

-- +goose Down
DROP TABLE IF EXISTS {{.Prefix}}outbox_parked;
