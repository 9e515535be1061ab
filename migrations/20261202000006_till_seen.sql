-- When each till last synced with the relay, for head office's Perangkat page and the
-- "till silent" alert: written when a sync session opens (connected) and closes.
CREATE TABLE till_seen (
    tenant_id  UUID NOT NULL,
    store_id   UUID NOT NULL,
    device_id  TEXT NOT NULL,
    till_code  TEXT NOT NULL,
    role       TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    last_seen  TIMESTAMPTZ NOT NULL,
    connected  BOOLEAN NOT NULL,
    -- Revoked from head office (the dashboard's Perangkat page).
    revoked    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (store_id, device_id)
);

ALTER TABLE till_seen ENABLE ROW LEVEL SECURITY;
ALTER TABLE till_seen FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON till_seen TO kasir_api
    USING (tenant_id = NULLIF(current_setting('kasir.tenant_id', true), '')::uuid);
CREATE POLICY relay_all ON till_seen TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON till_seen TO kasir_api;
