-- cqrskit PostgreSQL schema, version 1. The store renders this file with
-- text/template (Q: the schema qualifier, "" or "name."; Prefix: the table
-- prefix; Channel: the outbox notification channel) before goose runs it.

-- +goose Up
{{if .Schema}}
CREATE SCHEMA IF NOT EXISTS {{.Schema}};
{{end}}
-- One row per stream: its type and current version. Every append locks
-- and advances this row, so appends to one stream are serialised and the
-- version is checked before any position is drawn.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}streams (
    stream_id   text   NOT NULL,
    stream_type text   NOT NULL DEFAULT '',
    version     bigint NOT NULL CHECK (version >= 0),
    -- The global-order transaction id of the stream's last append (see
    -- events.tx_id): never less than the one before, so the global log
    -- keeps each stream's events in version order.
    last_tx_id  xid8   NOT NULL DEFAULT '0',
    CONSTRAINT {{.Prefix}}streams_pkey PRIMARY KEY (stream_id)
);

-- The global log. position comes from an identity sequence, and sequence
-- values can commit out of order, so global readers order by
-- (tx_id, position) and read only transactions older than every running
-- one (pg_snapshot_xmin). tx_id is the appending transaction's id, raised
-- to the stream's previous last_tx_id when that is larger (a transaction
-- that got its id early can append after a younger one committed to the
-- same stream); a raised tx_id is still >= the writer's own id, so a
-- reader still cannot pass it before it commits. UNIQUE (stream_id,
-- version) backs up the streams row lock.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}events (
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    id             uuid        NOT NULL,
    stream_id      text        NOT NULL,
    stream_type    text        NOT NULL DEFAULT '',
    version        bigint      NOT NULL CHECK (version >= 1),
    type           text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    data           bytea       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}events_pkey PRIMARY KEY (position),
    CONSTRAINT {{.Prefix}}events_id_key UNIQUE (id),
    CONSTRAINT {{.Prefix}}events_stream_version_key UNIQUE (stream_id, version)
);
CREATE INDEX IF NOT EXISTS {{.Prefix}}events_tx_position_idx
    ON {{.Q}}{{.Prefix}}events (tx_id, position);

-- Events waiting to be published: one row per event, written in the
-- append's transaction, deleted by the relay once the broker acknowledged
-- it. The relay joins events on event_position.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}outbox (
    id             bigint      GENERATED ALWAYS AS IDENTITY,
    event_position bigint      NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}outbox_pkey PRIMARY KEY (id)
);

-- Wakes a relay that LISTENs on the channel. NOTIFY serialises the commits
-- of notifying transactions (PostgreSQL holds a database-wide lock from
-- queueing the notification until the commit is flushed), which would cut
-- concurrent appends to one per WAL flush. So the trigger is deferred to
-- commit time and notifies only if no other transaction is committing a
-- notification at that moment: a burst of commits is coalesced into fewer
-- notifications, and a relay re-checks the outbox after draining it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION {{.Q}}{{.Prefix}}outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock({{.NotifyLock}}) THEN
        PERFORM pg_notify('{{.Channel}}', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP TRIGGER IF EXISTS {{.Prefix}}outbox_notify ON {{.Q}}{{.Prefix}}outbox;
CREATE CONSTRAINT TRIGGER {{.Prefix}}outbox_notify
    AFTER INSERT ON {{.Q}}{{.Prefix}}outbox
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION {{.Q}}{{.Prefix}}outbox_notify();

-- The latest snapshot per stream.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}snapshots (
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    schema_version integer     NOT NULL,
    data           bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}snapshots_pkey PRIMARY KEY (stream_id)
);

-- Idempotent handlers' marks: one row per (handler, event) handled.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}processed (
    handler      text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}processed_pkey PRIMARY KEY (handler, event_id)
);

-- Messages a handler gave up on, kept for inspection and replay.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}dead_letters (
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    handler         text        NOT NULL,
    event_id        uuid        NOT NULL,
    topic           text        NOT NULL DEFAULT '',
    payload         bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}',
    error           text        NOT NULL DEFAULT '',
    attempts        integer     NOT NULL DEFAULT 0,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}dead_letters_pkey PRIMARY KEY (id),
    CONSTRAINT {{.Prefix}}dead_letters_handler_event_key UNIQUE (handler, event_id)
);

-- Projection checkpoints: the cursor (tx_id, position) after the last
-- event a projection applied.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}checkpoints (
    name       text        NOT NULL,
    tx_id      bigint      NOT NULL DEFAULT 0,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {{.Prefix}}checkpoints_pkey PRIMARY KEY (name)
);

-- Relay leadership: the relay holding an unexpired lease publishes; others
-- wait as standbys.
CREATE TABLE IF NOT EXISTS {{.Q}}{{.Prefix}}relay_leases (
    name       text        NOT NULL,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT {{.Prefix}}relay_leases_pkey PRIMARY KEY (name)
);

-- +goose Down
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}relay_leases;
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}checkpoints;
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}dead_letters;
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}processed;
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}snapshots;
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}outbox;
DROP FUNCTION IF EXISTS {{.Q}}{{.Prefix}}outbox_notify();
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}events;
DROP TABLE IF EXISTS {{.Q}}{{.Prefix}}streams;
