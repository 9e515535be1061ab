-- What head office reads and sets on a product besides its name and price: the cost
-- (margin reports), the minimum stock below which it is low (per product, set on a till
-- or at head office), and its barcodes. Written by the materialiser from the catalog
-- document like every other column; a product's row still only moves to a newer edit.
ALTER TABLE products
    ADD COLUMN cost      BIGINT,
    ADD COLUMN min_stock NUMERIC(14, 3),
    ADD COLUMN barcodes  TEXT[] NOT NULL DEFAULT '{}';
