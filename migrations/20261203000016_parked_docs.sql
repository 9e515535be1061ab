-- Documents a relay instance took out of memory (a closed day's ledger nobody synced for
-- a while): its heads and the chunk hashes that hold exactly those changes, both sorted.
-- The next load of the store lists such a document without reading its chunks, but only
-- while its stored chunks are still exactly `parked_chunks` (another instance may have
-- added or compacted some since); otherwise it is loaded as before. NULL: never parked.
ALTER TABLE docs ADD COLUMN parked_heads bytea[], ADD COLUMN parked_chunks bytea[];

-- Reading one document's chunks back (and comparing them with `parked_chunks`) is by
-- document; before, chunks were only ever read by store and sequence number.
CREATE INDEX doc_chunks_store_doc ON doc_chunks(store_id, doc_id);
