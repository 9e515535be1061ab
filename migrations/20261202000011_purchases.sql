-- Purchasing: a receipt carries what one stock unit cost and the supplier; a return
-- to the supplier (kind 'supplier_return', negative qty) names the supplier too. The
-- average purchase cost per SKU (Σ qty × cost ÷ Σ qty over costed receipts) is what
-- margins use, before the catalog's own cost.
ALTER TABLE stock_movements ADD COLUMN cost BIGINT, ADD COLUMN supplier TEXT;

CREATE VIEW product_costs WITH (security_invoker = true) AS
SELECT tenant_id, store_id, sku,
       round(sum(qty * cost) / sum(qty))::int8 AS avg_cost,
       sum(qty) AS received
  FROM stock_movements
 WHERE kind = 'receive' AND cost IS NOT NULL AND qty > 0
 GROUP BY tenant_id, store_id, sku;

GRANT SELECT ON product_costs TO kasir_api;
