-- Kasir relay schema, version 1.
--
-- Three groups of tables:
--   1. the relay's own state: identity, tenants, stores, document chunks (keyed by content
--      hash, so any number of relay instances can write the same store at once);
--   2. the materialised business tables every row of which carries tenant_id and store_id,
--      protected by row-level security for the `kasir_api` role the head-office API uses;
--   3. the outbox the Kafka publisher drains.

-- 1. Relay state ---------------------------------------------------------------------

-- One row: the relay's iroh secret key (every instance serves under the same endpoint id,
-- like servers behind a load balancer) and the HS256 secret of head-office tokens.
CREATE TABLE relay_identity (
    id          SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    secret_key  BYTEA NOT NULL CHECK (length(secret_key) = 32),
    jwt_secret  BYTEA NOT NULL CHECK (length(jwt_secret) >= 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where running instances listen (tickets name them; `status` lists them).
CREATE TABLE relay_instances (
    instance_id UUID PRIMARY KEY,
    addrs       TEXT[] NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    tenant_id   UUID PRIMARY KEY,
    name        TEXT NOT NULL CHECK (name <> ''),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE stores (
    store_id    UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(tenant_id),
    name        TEXT NOT NULL,
    -- The till that presented an adoption ticket (a store that began on a till): it may
    -- sync before the relay holds the store's roster.
    adopted_by  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stores_tenant ON stores(tenant_id);

-- Tickets the relay issued, by blake3 of their one-time secret: `join` (a new till of a
-- store created on the relay; the invite itself lives in the store document) or `adopt`.
CREATE TABLE relay_tickets (
    secret_hash TEXT PRIMARY KEY,
    store_id    UUID NOT NULL REFERENCES stores(store_id),
    kind        TEXT NOT NULL CHECK (kind IN ('join', 'adopt')),
    used_by     TEXT,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every document of every store the relay serves.
CREATE TABLE docs (
    store_id    UUID NOT NULL REFERENCES stores(store_id),
    doc_id      BYTEA NOT NULL CHECK (length(doc_id) = 32),
    kind        SMALLINT NOT NULL,
    till        BYTEA,
    business_date DATE,
    PRIMARY KEY (store_id, doc_id)
);

-- Automerge chunks (snapshots or incremental saves). The key is the content hash, so two
-- instances writing the same bytes is a no-op; loading concatenates a document's chunks.
CREATE TABLE doc_chunks (
    hash        BYTEA PRIMARY KEY CHECK (length(hash) = 32),
    store_id    UUID NOT NULL,
    doc_id      BYTEA NOT NULL,
    seq         BIGSERIAL NOT NULL,
    bytes       BYTEA NOT NULL,
    written_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (store_id, doc_id) REFERENCES docs(store_id, doc_id)
);
CREATE INDEX doc_chunks_store_seq ON doc_chunks(store_id, seq);

-- 2. Materialised tables -------------------------------------------------------------

CREATE TABLE sales (
    sale_id       TEXT PRIMARY KEY,
    tenant_id     UUID NOT NULL,
    store_id      UUID NOT NULL,
    receipt_no    TEXT NOT NULL,
    till_code     TEXT NOT NULL,
    cashier       TEXT,
    business_date DATE NOT NULL,
    subtotal      BIGINT NOT NULL,
    tax           BIGINT NOT NULL,
    service_charge BIGINT NOT NULL,
    rounding      BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'completed'
                  CHECK (status IN ('completed', 'voided', 'refunded')),
    refunded      BIGINT NOT NULL DEFAULT 0,
    payments      JSONB NOT NULL DEFAULT '[]',
    created_at    TIMESTAMPTZ NOT NULL,
    materialised_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX sales_store_day ON sales(store_id, business_date);

CREATE TABLE sale_lines (
    -- No foreign key to sales: lines arrive in the statement after their sale, in the
    -- same transaction, and the check cost a tenth of materialising.
    sale_id     TEXT NOT NULL,
    line_no     INTEGER NOT NULL,
    tenant_id   UUID NOT NULL,
    store_id    UUID NOT NULL,
    product_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    qty         NUMERIC(14, 3) NOT NULL,
    unit_price  BIGINT NOT NULL,
    discount    BIGINT NOT NULL,
    line_total  BIGINT NOT NULL,
    PRIMARY KEY (sale_id, line_no)
);
CREATE INDEX sale_lines_store_sku ON sale_lines(store_id, sku);

-- Voids and refunds, whichever till wrote them and whether or not the sale has arrived
-- yet (a void keyed by its sale, so two tills voiding the same sale count once).
CREATE TABLE sale_adjustments (
    adjustment_id TEXT NOT NULL,
    tenant_id   UUID NOT NULL,
    store_id    UUID NOT NULL,
    sale_id     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('void', 'refund')),
    amount      BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (store_id, adjustment_id)
);
CREATE INDEX sale_adjustments_sale ON sale_adjustments(sale_id);

CREATE TABLE stock_movements (
    movement_id TEXT NOT NULL,
    tenant_id   UUID NOT NULL,
    store_id    UUID NOT NULL,
    kind        TEXT NOT NULL,
    sku         TEXT NOT NULL,
    qty         NUMERIC(14, 3) NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (store_id, movement_id)
);

CREATE TABLE products (
    tenant_id   UUID NOT NULL,
    store_id    UUID NOT NULL,
    product_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    price       BIGINT NOT NULL,
    category    TEXT,
    unit        TEXT NOT NULL,
    active      BOOLEAN NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (store_id, product_id)
);

CREATE TABLE stock_levels (
    tenant_id   UUID NOT NULL,
    store_id    UUID NOT NULL,
    sku         TEXT NOT NULL,
    on_hand     NUMERIC(14, 3) NOT NULL,
    PRIMARY KEY (store_id, sku)
);

-- 3. Outbox --------------------------------------------------------------------------

CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    tenant_id    UUID NOT NULL,
    store_id     UUID NOT NULL,
    topic        TEXT NOT NULL,
    -- JSON, not JSONB: stored as produced and sent as is; parsing it into JSONB cost a
    -- third of materialising and nothing here queries into it.
    payload      JSON NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox(id) WHERE published_at IS NULL;

-- Row-level security ------------------------------------------------------------------
-- The head-office API runs every query as `kasir_api` with `kasir.tenant_id` set for the
-- transaction; rows of other tenants are invisible even to hand-written SQL.

DO $$
BEGIN
    CREATE ROLE kasir_api NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;
GRANT kasir_api TO CURRENT_USER;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'stores', 'sales', 'sale_lines', 'sale_adjustments', 'stock_movements', 'products',
                             'stock_levels', 'outbox']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO kasir_api
               USING (tenant_id = NULLIF(current_setting(''kasir.tenant_id'', true), '''')::uuid)', t);
        -- The relay itself (the migrating role) reads and writes every tenant.
        EXECUTE format('CREATE POLICY relay_all ON %I TO CURRENT_USER USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT ON %I TO kasir_api', t);
    END LOOP;
END
$$;

