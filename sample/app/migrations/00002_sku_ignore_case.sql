-- SKUs are unique regardless of case: the index holds them upper-cased
-- (app.SKUKey). Rows written before that are brought into that form. Where
-- two SKUs differ only in case, the product created first (the smaller
-- UUIDv7) keeps the reservation; the other product keeps its SKU but no
-- longer reserves it. Portable SQL, as 00001.

-- +goose Up
DELETE FROM sku_index
WHERE EXISTS (
    SELECT 1 FROM sku_index AS first
    WHERE UPPER(first.sku) = UPPER(sku_index.sku)
      AND first.product_id < sku_index.product_id
);
UPDATE sku_index SET sku = UPPER(sku) WHERE sku <> UPPER(sku);

-- +goose Down
-- The original case is not recorded here; the products keep it. Nothing to
-- undo: upper-cased keys are valid SKUs.
SELECT 1;
