-- Transfers between outlets of a tenant: each outlet records its half as a 'transfer'
-- movement (negative sent, positive received) naming the other outlet and the sent
-- movement's id. `stock_transfers` pairs them: in transit until received, and a
-- mismatch when the quantities differ. Halves name outlets by id; only outlets of the
-- same tenant pair (another tenant's store never does).
ALTER TABLE stock_movements ADD COLUMN other_store TEXT, ADD COLUMN transfer_id TEXT;
CREATE INDEX stock_movements_transfer ON stock_movements(transfer_id) WHERE transfer_id IS NOT NULL;

CREATE VIEW stock_transfers WITH (security_invoker = true) AS
SELECT o.tenant_id, o.transfer_id, o.store_id AS from_store, o.other_store AS to_store,
       o.sku, (-o.qty)::float8 AS sent, COALESCE(sum(i.qty), 0)::float8 AS received,
       o.at AS sent_at, max(i.at) AS received_at,
       CASE WHEN count(i.movement_id) = 0 THEN 'in_transit'
            WHEN sum(i.qty) = -o.qty THEN 'received'
            ELSE 'mismatch' END AS status
  FROM stock_movements o
  LEFT JOIN stock_movements i
         ON i.kind = 'transfer' AND i.qty > 0 AND i.transfer_id = o.transfer_id
        AND i.tenant_id = o.tenant_id AND i.store_id::text = o.other_store
        AND i.sku = o.sku
 WHERE o.kind = 'transfer' AND o.qty < 0 AND o.transfer_id IS NOT NULL
 GROUP BY o.tenant_id, o.transfer_id, o.store_id, o.other_store, o.sku, o.qty, o.at;

GRANT SELECT ON stock_transfers TO kasir_api;
