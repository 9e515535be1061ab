-- People of head office who log in to the dashboard: one row per e-mail address, of one
-- tenant, with an argon2id hash of the password (PHC string) and a role. Read only by the
-- relay's own role when someone logs in: `kasir_api` (the role every API request runs
-- as) is granted nothing here, so no report query can reach a password hash.
CREATE TABLE ho_users (
    user_id       UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (tenant_id),
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'analyst')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
