-- The sample's own tables, beside the framework's cqrs_* tables. Portable
-- SQL: the same file runs on SQLite and PostgreSQL. Times are BIGINT Unix
-- nanoseconds (UTC).

-- +goose Up

-- The SKU reservations: written in the transaction that appends a product's
-- first events, so two products can never commit with one SKU.
CREATE TABLE IF NOT EXISTS sku_index (
    sku        TEXT NOT NULL PRIMARY KEY,
    product_id TEXT NOT NULL
);

-- The products read model, fed from the broker by an idempotent handler.
CREATE TABLE IF NOT EXISTS products (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    sku          TEXT    NOT NULL,
    price_cents  BIGINT  NOT NULL,
    stock        BIGINT  NOT NULL,
    discontinued BOOLEAN NOT NULL DEFAULT FALSE,
    version      BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- Low-stock alerts, one per stock adjustment that crossed the threshold,
-- fed from the broker by a second idempotent handler.
CREATE TABLE IF NOT EXISTS stock_alerts (
    event_id   TEXT   NOT NULL PRIMARY KEY,
    product_id TEXT   NOT NULL,
    stock      BIGINT NOT NULL,
    threshold  BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    raised_at  BIGINT NOT NULL
);

-- The stats projection's per-product state, fed from the event store and
-- rebuilt from it on demand.
CREATE TABLE IF NOT EXISTS stats_products (
    id           TEXT    NOT NULL PRIMARY KEY,
    price_cents  BIGINT  NOT NULL,
    stock        BIGINT  NOT NULL,
    discontinued BOOLEAN NOT NULL DEFAULT FALSE
);

-- +goose Down
DROP TABLE IF EXISTS stats_products;
DROP TABLE IF EXISTS stock_alerts;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS sku_index;
