-- The tax of each group of a receipt whose lines were taxed under several rules
-- (exempt beras beside PPN sabun beside PBJT gorengan). Such a sale's own row reads
-- tax_kind 'mixed'; its DPP, DPP nilai lain and tax per kind are here, so the monthly
-- tax report never counts PBJT as PPN nor exempt goods as taxed.
CREATE TABLE sale_taxes (
    tenant_id UUID NOT NULL,
    store_id  UUID NOT NULL,
    sale_id   TEXT NOT NULL,
    -- The lines' tax code: standard, exempt, ppn, ppn_full, pbjt.
    code      TEXT NOT NULL,
    -- none (exempt or untaxed), ppn, pbjt.
    tax_kind  TEXT NOT NULL,
    rate_bp   BIGINT NOT NULL,
    base      BIGINT NOT NULL,
    dpp       BIGINT NOT NULL,
    dpp_other BIGINT NOT NULL,
    tax       BIGINT NOT NULL,
    PRIMARY KEY (sale_id, code)
);
CREATE INDEX sale_taxes_store ON sale_taxes(store_id);

ALTER TABLE sale_taxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE sale_taxes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sale_taxes TO kasir_api
    USING (tenant_id = NULLIF(current_setting('kasir.tenant_id', true), '')::uuid);
CREATE POLICY relay_all ON sale_taxes TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON sale_taxes TO kasir_api;
