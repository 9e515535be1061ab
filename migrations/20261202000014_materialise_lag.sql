-- The relay's /metrics reads the lag from a till's commit to the materialised row over
-- the sales materialised in the last minutes: an index keeps that a range scan.
CREATE INDEX IF NOT EXISTS sales_materialised_at ON sales (materialised_at);
