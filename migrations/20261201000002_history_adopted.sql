-- Steps of an upgrade done once per database. `signed_history`: every store's history
-- from before signed changes carries the relay's adoption signature (`kasir-relay
-- migrate`, or the first `kasir-relay run` after the upgrade, adopts it and records
-- this row; later runs skip the scan).
CREATE TABLE relay_upgrades (
    step    text        PRIMARY KEY,
    done_at timestamptz NOT NULL DEFAULT now()
);
