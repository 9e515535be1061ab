-- The sync session that brought a sale to the relay: the trace id both the till and
-- the relay log for that session (derived from the connection's TLS secrets), so a
-- sale can be followed from the till's log through the relay's to its row here.
-- NULL for sales written by a rebuild or before this column existed.
ALTER TABLE sales ADD COLUMN sync_trace text;
