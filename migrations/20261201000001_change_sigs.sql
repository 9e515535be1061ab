-- Change signatures (kasir_sync::trust): every change a till or the relay wrote is signed
-- by its author's device key; history written before signatures carries an adoption
-- signature of the relay (kasir-relay migrate) or of an owner till (kasir upgrade).
-- Sent along with the changes to every till that lacks them.
CREATE TABLE change_sigs (
    store_id uuid   NOT NULL REFERENCES stores(store_id),
    hash     bytea  NOT NULL CHECK (length(hash) = 32),
    signer   bytea  NOT NULL CHECK (length(signer) = 32),
    sig      bytea  NOT NULL CHECK (length(sig) = 64),
    PRIMARY KEY (store_id, hash)
);
