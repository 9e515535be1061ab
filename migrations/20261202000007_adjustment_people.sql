-- Who voided or refunded a sale, and which supervisor approved it, for head office's
-- void and refund audit. Rows materialised before this read NULL.
ALTER TABLE sale_adjustments
    ADD COLUMN cashier     TEXT,
    ADD COLUMN approved_by TEXT,
    ADD COLUMN till_code   TEXT;
