-- The tax base of each sale, for head office's monthly tax report: DPP, DPP nilai lain
-- (the 11/12 base of PPN 12%) and which tax applied (none, ppn, pbjt). Sales
-- materialised before this column existed read 0 / 'none' until their stores resync.
ALTER TABLE sales
    ADD COLUMN dpp       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN dpp_other BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN tax_kind  TEXT NOT NULL DEFAULT 'none';
