-- Customers and kasbon (sales on credit) from every till's ledgers. A balance is the
-- sum of a customer's debt entries: + a sale's credit, − its void or a kasbon refund
-- (whose customer is the credit's, found through the sale: a void may arrive first),
-- − a payment taken at any till.
CREATE TABLE customers (
    tenant_id     UUID NOT NULL,
    store_id      UUID NOT NULL,
    customer_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    phone         TEXT,
    tier          TEXT,
    active        BOOLEAN NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (store_id, customer_id)
);

CREATE TABLE debt_entries (
    tenant_id   UUID NOT NULL,
    store_id    UUID NOT NULL,
    entry_id    TEXT NOT NULL,
    customer_id TEXT,
    sale_id     TEXT,
    kind        TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    due_date    DATE,
    at          TIMESTAMPTZ NOT NULL,
    till_code   TEXT,
    PRIMARY KEY (store_id, entry_id)
);
CREATE INDEX debt_entries_sale ON debt_entries(store_id, sale_id);

-- What each customer owes: their entries, reversals through their credits.
CREATE VIEW customer_balances WITH (security_invoker = true) AS
SELECT c.tenant_id, c.store_id, c.customer_id, c.name, c.phone, c.tier,
       COALESCE(sum(e.amount), 0)::int8 AS balance
  FROM customers c
  LEFT JOIN (
       SELECT d.store_id, COALESCE(d.customer_id, cr.customer_id) AS customer_id, d.amount
         FROM debt_entries d
         LEFT JOIN debt_entries cr ON d.customer_id IS NULL AND cr.store_id = d.store_id
                                  AND cr.kind = 'credit' AND cr.sale_id = d.sale_id
  ) e ON e.store_id = c.store_id AND e.customer_id = c.customer_id
 GROUP BY c.tenant_id, c.store_id, c.customer_id, c.name, c.phone, c.tier;

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customers TO kasir_api
    USING (tenant_id = NULLIF(current_setting('kasir.tenant_id', true), '')::uuid);
CREATE POLICY relay_all ON customers TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON customers TO kasir_api;

ALTER TABLE debt_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE debt_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON debt_entries TO kasir_api
    USING (tenant_id = NULLIF(current_setting('kasir.tenant_id', true), '')::uuid);
CREATE POLICY relay_all ON debt_entries TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON debt_entries TO kasir_api;
GRANT SELECT ON customer_balances TO kasir_api;
