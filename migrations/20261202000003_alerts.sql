-- Alerts that reach people: raised by the relay's alert task from the materialised
-- tables, one row per (kind, store, subject, business day) — its id is derived from
-- those, so every instance may look and none raises one twice. Each goes to the outbox
-- (topic kasir.alerts.v1) and to the tenant's webhooks in the same transaction.
CREATE TABLE alerts (
    alert_id   UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    store_id   UUID NOT NULL,
    kind       TEXT NOT NULL
               CHECK (kind IN ('low_stock', 'oversold', 'void_rate', 'outbox_backlog', 'till_silent')),
    subject    TEXT NOT NULL,
    message    TEXT NOT NULL,
    -- The event as sent (and signed) to webhooks and Kafka, byte for byte.
    payload    JSON NOT NULL,
    raised_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alerts_store_time ON alerts (store_id, raised_at DESC);
CREATE INDEX alerts_tenant_time ON alerts (tenant_id, raised_at DESC);

ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alerts TO kasir_api
    USING (tenant_id = NULLIF(current_setting('kasir.tenant_id', true), '')::uuid);
CREATE POLICY relay_all ON alerts TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON alerts TO kasir_api;

-- A tenant's webhooks (`kasir-relay webhook add`); the secret signs each body
-- (HMAC-SHA256). Not readable by `kasir_api`.
CREATE TABLE webhooks (
    webhook_id UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (tenant_id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per alert and webhook until it is delivered; a failed attempt moves
-- `next_at` back with a doubling wait (at most ten minutes).
CREATE TABLE webhook_deliveries (
    alert_id     UUID NOT NULL REFERENCES alerts (alert_id),
    webhook_id   UUID NOT NULL REFERENCES webhooks (webhook_id),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    delivered_at TIMESTAMPTZ,
    last_error   TEXT,
    PRIMARY KEY (alert_id, webhook_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE delivered_at IS NULL;
