-- Sell units: a line sold in another unit than the product's stock unit (a dus of 40
-- pcs) keeps `qty` and `unit_price` in that unit, names it in `unit`, and says what it
-- took from stock in `stock_qty` (NULL when sold in the stock unit: `qty` is that).
-- Margins and quantities sold use COALESCE(stock_qty, qty).
ALTER TABLE sale_lines ADD COLUMN unit TEXT, ADD COLUMN stock_qty NUMERIC(14, 3);
