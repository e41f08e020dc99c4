-- cqrskit PostgreSQL schema, version 2: parked outbox rows.

-- +goose Up
-- Outbox rows the broker rejected for good (too large, bad topic), moved
-- here by the relay with the broker's error. A parked row holds back the
-- later rows of its stream (the relay's read skips them) until an operator
-- retries it (back into the outbox under its id) or discards it.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}outbox_parked (
    id             bigint      NOT NULL,
    event_position bigint      NOT NULL,
    stream_id      text        NOT NULL,
    created_at     timestamptz NOT NULL,
    reason         text        NOT NULL,
    parked_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}outbox_parked_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS {{.Prefix}}outbox_parked_stream_idx
    ON {{.Q}}{{.Prefix}}outbox_parked (stream_id);

-- +goose Down
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}outbox_parked;
