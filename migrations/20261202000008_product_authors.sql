-- Which device holds a product's current price and name: after a till and head office
-- change the same field at once, the one whose value won (the dashboard shows it).
ALTER TABLE products
    ADD COLUMN price_by TEXT,
    ADD COLUMN name_by  TEXT;
