//! SQLite storage: document chunks, metadata and the read tables' schema.
//!
//! Documents are stored as the automerge-repo layout does it, adapted to a database with
//! transactions: a document is the union of its chunks (one compacted snapshot plus
//! incremental changes). Every local change is appended as an incremental chunk **in the
//! same transaction** as the read-table rows it implies, so the two never disagree.
//! Compaction replaces all chunks of a document by one snapshot, atomically.
//!
//! The database runs in WAL mode with `synchronous=FULL`: a committed transaction has
//! been fsynced to the WAL, so it survives power loss, not just a process crash.

use std::path::Path;

use kasir_crdt::{ActorId, Doc, DocId, DocKind};
use kasir_sync::Identity;
use kasir_sync::trust::ChangeSig;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{NodeError, classify_sqlite};

/// The `meta` key of a data directory whose history is signed (written by this version,
/// or adopted by `kasir upgrade`).
pub(crate) const SIGNED_HISTORY: &str = "signed_history";

/// File name of the database in the data directory.
pub const DB_FILE: &str = "kasir.sqlite";

/// Bump when the read tables change shape: they are rebuilt from the documents on open.
pub(crate) const READ_TABLES_VERSION: i64 = 11;

/// A write compacts its document in line only past this many chunks; below it the
/// daemon's idle maintenance does (see [`COMPACT_WHEN_IDLE`]), off the sale path.
pub(crate) const COMPACT_AFTER_CHUNKS: i64 = 1024;

/// Chunks after which the daemon's maintenance compacts a document.
pub(crate) const COMPACT_WHEN_IDLE: i64 = 64;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Every document this node holds; `till`/`date` only for ledgers.
CREATE TABLE IF NOT EXISTS docs (
    doc_id        BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    till          TEXT,
    date          TEXT,
    n_chunks      INTEGER NOT NULL DEFAULT 0,
    -- blake3 of the sorted heads: what the sync manifest compares.
    heads         BLOB
) WITHOUT ROWID;

-- Addresses peers were last reached at (local knowledge, not synced).
CREATE TABLE IF NOT EXISTS peer_addrs (
    endpoint_id  TEXT NOT NULL,
    addr         TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, addr)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_kind_date ON docs(kind, date);

-- The signature of every change this node holds or sent (see kasir_sync::trust): its
-- author's, or an owner's adoption of history from before signatures.
CREATE TABLE IF NOT EXISTS change_sigs (
    hash    BLOB PRIMARY KEY,
    signer  BLOB NOT NULL,
    sig     BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chunks (
    id      INTEGER PRIMARY KEY,
    doc_id  BLOB NOT NULL,
    data    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, id);

-- Automerge sync state per (peer, document), so reconnects are cheap.
CREATE TABLE IF NOT EXISTS sync_states (
    peer    TEXT NOT NULL,
    doc_id  BLOB NOT NULL,
    state   BLOB NOT NULL,
    -- heads hash both sides share: equal to docs.heads when the peer has everything.
    shared  BLOB NOT NULL,
    PRIMARY KEY (peer, doc_id)
) WITHOUT ROWID;

-- Small numbers for documents, so a sale row names its ledger in a byte or two
-- instead of a 32-byte id.
CREATE TABLE IF NOT EXISTS doc_numbers (
    n       INTEGER PRIMARY KEY,
    doc_id  BLOB NOT NULL UNIQUE
);

-- Receipt sequence per business day, bumped in the sale's own transaction.
CREATE TABLE IF NOT EXISTS receipt_counters (
    date  TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL
) WITHOUT ROWID;

-- ---- read tables (derived from the documents; rebuildable) ----

CREATE TABLE IF NOT EXISTS products (
    product_id    TEXT NOT NULL UNIQUE,
    sku           TEXT NOT NULL,
    name          TEXT NOT NULL,
    barcodes      TEXT NOT NULL,
    price         INTEGER NOT NULL,
    cost          INTEGER,
    category      TEXT,
    unit          TEXT NOT NULL,
    active        INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    -- Thousandths (`Qty`); older files get it from ADDED_COLUMNS.
    min_stock     INTEGER,
    -- `TaxCode` name when not the store's rule.
    tax_code      TEXT,
    -- JSON of the product's other units and grosir tiers (`SellUnit`, `PriceTier`).
    units         TEXT,
    tiers         TEXT,
    -- JSON of its promotions (`kasir_crdt::promo::Promo`).
    promos        TEXT
);
CREATE INDEX IF NOT EXISTS products_sku ON products(sku);

CREATE TABLE IF NOT EXISTS product_barcodes (
    barcode     TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    -- The unit the barcode sells (a carton's), NULL for the stock unit.
    unit        TEXT,
    PRIMARY KEY (barcode, product_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS product_barcodes_product ON product_barcodes(product_id);

-- Words of product names, for typo correction in search.
CREATE TABLE IF NOT EXISTS product_words (
    word TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Word-prefix search over name, SKU and barcodes.
CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(
    name, sku, barcodes,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3'
);

-- Every distinct stock effect of voids, refunds and movements, keyed by movement id:
-- applying one twice is a no-op. (Sale lines update `stock_levels` directly.)
CREATE TABLE IF NOT EXISTS stock_effects (
    movement_id TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    sku         TEXT NOT NULL,
    qty         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL
) WITHOUT ROWID;

-- Goods received from and returned to suppliers (from every till's ledgers): what was
-- paid per stock unit, for the average purchase cost (HPP) margins use.
CREATE TABLE IF NOT EXISTS purchases (
    movement_id TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,   -- receive | supplier_return
    sku         TEXT NOT NULL,
    qty         INTEGER NOT NULL, -- thousandths, signed like the stock effect
    cost        INTEGER,
    supplier    TEXT,
    at_ms       INTEGER NOT NULL,
    till_code   TEXT NOT NULL,
    user        TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS purchases_sku ON purchases(sku, at_ms);

-- Halves of transfers between outlets recorded here: sent (qty < 0, transfer_id its own
-- movement id) and received (qty > 0, the sender's id).
CREATE TABLE IF NOT EXISTS transfers (
    movement_id TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL,
    other_store TEXT NOT NULL,
    sku         TEXT NOT NULL,
    qty         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transfers_id ON transfers(transfer_id, sku);

CREATE TABLE IF NOT EXISTS stock_levels (
    sku      TEXT PRIMARY KEY,
    on_hand  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS sales (
    sale_id       BLOB PRIMARY KEY,  -- tables::SaleKey: 16 UUID bytes
    client_id     TEXT,
    receipt_no    TEXT NOT NULL,
    till_code     TEXT NOT NULL,
    business_date TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    change        INTEGER NOT NULL,
    status        TEXT NOT NULL,
    doc           INTEGER NOT NULL, -- doc_numbers.n of the ledger holding the record
    -- The day's figures (Z-report) and who rang it up (audit).
    gross         INTEGER NOT NULL DEFAULT 0,  -- before discounts
    discounts     INTEGER NOT NULL DEFAULT 0,
    tax           INTEGER NOT NULL DEFAULT 0,
    rounding      INTEGER NOT NULL DEFAULT 0,
    cashier       TEXT,
    approved_by   TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sales_date ON sales(business_date);
-- Idempotency keys; most sales have none, so the index holds only those that do.
CREATE UNIQUE INDEX IF NOT EXISTS sales_client ON sales(client_id) WHERE client_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS sale_lines (
    sale_id     BLOB NOT NULL,
    idx         INTEGER NOT NULL,
    sku         TEXT NOT NULL,
    qty         INTEGER NOT NULL,
    unit_price  INTEGER NOT NULL,
    line_total  INTEGER NOT NULL,
    PRIMARY KEY (sale_id, idx)
) WITHOUT ROWID;

-- Voids and refunds seen, so a sale's status can be derived wherever its record lives.
-- A void is keyed by its sale (`void:{sale_id}`): two tills voiding one sale while
-- apart count once, under the void with the smaller id on every replica.
CREATE TABLE IF NOT EXISTS sale_events (
    event_id  TEXT PRIMARY KEY,
    sale_id   BLOB NOT NULL,
    kind      TEXT NOT NULL,
    amount    INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    record_id     TEXT NOT NULL DEFAULT '',
    till_code     TEXT NOT NULL DEFAULT '',
    business_date TEXT NOT NULL DEFAULT '',
    tax           INTEGER NOT NULL DEFAULT 0,
    rounding      INTEGER NOT NULL DEFAULT 0,
    cashier       TEXT,
    approved_by   TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sale_events_sale ON sale_events(sale_id);

-- Refunded quantities per sale line, so no refund returns more than was sold.
CREATE TABLE IF NOT EXISTS refund_lines (
    refund_id TEXT NOT NULL,
    sale_id   BLOB NOT NULL,
    line      INTEGER NOT NULL,
    qty       INTEGER NOT NULL,
    amount    INTEGER NOT NULL,
    tax       INTEGER NOT NULL,
    PRIMARY KEY (refund_id, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refund_lines_sale ON refund_lines(sale_id);

-- Money into (+) and out of (−) each till, by method: sales (cash net of change),
-- voids, refunds, cash in/out. Shift closes and Z-reports are sums over it.
CREATE TABLE IF NOT EXISTS money_events (
    event_id      TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,   -- sale | void | refund | cash_in | cash_out
    record_id     TEXT NOT NULL,
    till_code     TEXT NOT NULL,
    business_date TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    method        TEXT NOT NULL,
    amount        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS money_events_till ON money_events(till_code, at_ms);
CREATE INDEX IF NOT EXISTS money_events_date ON money_events(business_date);

-- Customers (pelanggan): the newest version of each, from every till's ledgers.
CREATE TABLE IF NOT EXISTS customers (
    customer_id   TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    phone         TEXT,
    tier          TEXT,
    active        INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Kasbon: + a sale's credit, − its void or a kasbon refund (customer through the
-- credit's sale, which may arrive later), − a payment. A balance is a sum, so entries
-- from any till merge like stock.
CREATE TABLE IF NOT EXISTS debt_entries (
    entry_id    TEXT PRIMARY KEY,
    customer_id TEXT,
    sale_id     TEXT,
    kind        TEXT NOT NULL,   -- credit | void | refund | payment
    amount      INTEGER NOT NULL,
    due_date    TEXT,
    at_ms       INTEGER NOT NULL,
    till_code   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS debt_entries_customer ON debt_entries(customer_id);
CREATE INDEX IF NOT EXISTS debt_entries_sale ON debt_entries(sale_id);

-- Cash shifts, one open per till (buka/tutup kasir).
CREATE TABLE IF NOT EXISTS till_shifts (
    shift_id      TEXT PRIMARY KEY,
    till_code     TEXT NOT NULL,
    cashier       TEXT NOT NULL,
    opening_cash  INTEGER NOT NULL,
    opened_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS till_shifts_till ON till_shifts(till_code, opened_at_ms);
CREATE TABLE IF NOT EXISTS till_shift_closes (
    shift_id      TEXT PRIMARY KEY,
    counted_cash  INTEGER NOT NULL,
    expected_cash INTEGER NOT NULL,
    closed_at_ms  INTEGER NOT NULL,
    closed_by     TEXT
) WITHOUT ROWID;

-- Who did what besides sales, voids and refunds (those are in `sales` and
-- `sale_events`): stock movements, shift events, cash in/out, logins, reprints, price,
-- profile and user changes.
CREATE TABLE IF NOT EXISTS audit_log (
    entry_id      TEXT PRIMARY KEY,
    at_ms         INTEGER NOT NULL,
    business_date TEXT NOT NULL,
    till_code     TEXT NOT NULL,
    user          TEXT,
    action        TEXT NOT NULL,
    record_id     TEXT,
    approved_by   TEXT,
    detail        TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_log_date ON audit_log(business_date, at_ms);

-- Dynamic QRIS charges this till showed (crate::qris): its own, not synced, not derived
-- from documents (never dropped by a rebuild). `request` is the sale request the charge
-- pays for, at fixed prices; its sale is recorded once the acquirer confirms.
CREATE TABLE IF NOT EXISTS qris_charges (
    charge_id     TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL UNIQUE,
    amount        INTEGER NOT NULL,
    qr            TEXT NOT NULL,
    status        TEXT NOT NULL,
    rrn           TEXT,
    request       TEXT NOT NULL,
    user_id       TEXT,
    user_name     TEXT,
    approved_by   TEXT,
    sale_id       TEXT,
    error         TEXT,
    via           TEXT,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Login sessions of this till (people::Sessions): only the blake3 hash of each bearer
-- token is kept. `user_id` is NULL for the device token.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash    BLOB PRIMARY KEY,
    user_id       TEXT,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER
) WITHOUT ROWID;

-- Carts being rung up and parked bills (open tickets) of this till: local, never
-- synced, kept so a crash, a reload or a killed WebView loses nothing. The draft id
-- becomes the sale's client id, so paying twice sells once.
CREATE TABLE IF NOT EXISTS drafts (
    draft_id      TEXT PRIMARY KEY,
    name          TEXT,
    lines         TEXT NOT NULL,   -- JSON: [{"sku","qty","discount","price"}]
    payments      TEXT NOT NULL DEFAULT '[]', -- JSON: what was paid before the rest
    user_id       TEXT,
    parked        INTEGER NOT NULL DEFAULT 0,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- One-time login links (`Node::login_link`): the blake3 hash of each, its user and
-- when it stops working; a link is deleted when used.
CREATE TABLE IF NOT EXISTS login_links (
    token_hash    BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Failed PIN attempts per user on this till, and the lockout they caused.
CREATE TABLE IF NOT EXISTS pin_failures (
    user_id         TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#;

/// Replaces the small file `path` with `bytes` so that a crash leaves the old file or the
/// new one, never half of either: written beside it, fsynced, renamed over it, and the
/// directory fsynced. `private` files are readable by their owner only (tokens).
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Opens (creating if asked) the database with durable settings and the schema.
///
/// With `key` the database is SQLCipher-encrypted with it (see [`crate::vault`]); the key
/// is set before anything is read, as SQLCipher requires. A new file is created
/// owner-only (SQLite gives its WAL the same mode).
pub(crate) fn open_db(
    dir: &Path,
    create: bool,
    key: Option<&crate::vault::DbKey>,
) -> Result<Connection, NodeError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        if !create {
            return Err(NodeError::NotInitialised(dir.display().to_string()));
        }
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(NodeError::io(format!("creating {}", path.display())))?;
    }
    let conn = Connection::open(&path).map_err(|e| classify_sqlite(e, &path))?;
    let setup = || -> rusqlite::Result<()> {
        if let Some(key) = key {
            conn.execute_batch(&format!("PRAGMA key = {};", key.sql_literal()))?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // 16 MiB of page cache (SQLite's default is 2): a catalog's search indexes stay
        // in memory, and with SQLCipher a cached page is one already decrypted (a typo
        // search over 20,000 products reads many pages: 4.4 ms at p99 with 2 MiB).
        conn.pragma_update(None, "cache_size", -16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        Ok(())
    };
    setup().map_err(|e| classify_sqlite(e, &path))?;
    Ok(conn)
}

/// Columns added to local tables after they first shipped: `CREATE TABLE IF NOT
/// EXISTS` leaves an older table as it was, so each is added when missing.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("drafts", "payments", "TEXT NOT NULL DEFAULT '[]'"),
    // Thousandths, as `Qty`.
    ("products", "min_stock", "INTEGER"),
    ("products", "tax_code", "TEXT"),
    ("products", "units", "TEXT"),
    ("products", "tiers", "TEXT"),
    ("products", "promos", "TEXT"),
    ("product_barcodes", "unit", "TEXT"),
    // The peer a charge was made through, when this till had no internet.
    ("qris_charges", "via", "TEXT"),
];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl};"))?;
        }
    }
    Ok(())
}

/// The read tables: derived from the documents, dropped and recreated by a rebuild.
const READ_TABLES: &[&str] = &[
    "products",
    "product_barcodes",
    "product_words",
    "products_fts",
    "products_tri",
    "stock_effects",
    "stock_levels",
    "sales",
    "sale_lines",
    "sale_events",
    "refund_lines",
    "money_events",
    "till_shifts",
    "till_shift_closes",
    "audit_log",
    "customers",
    "debt_entries",
    "purchases",
    "transfers",
    // Before read tables version 6 (no till column): dropped, never recreated.
    "shifts",
];

/// Drops every read table and creates them again with the current schema (so a
/// rebuild after a schema change starts from the right shape).
pub(crate) fn recreate_read_tables(tx: &Transaction<'_>) -> Result<(), NodeError> {
    for table in READ_TABLES {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {table};"))?;
    }
    tx.execute_batch(SCHEMA)?;
    Ok(())
}

/// Reads a metadata value.
pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, NodeError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Writes a metadata value.
pub(crate) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<(), NodeError> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Registers a document (idempotent).
pub(crate) fn register_doc(
    tx: &Transaction<'_>,
    id: DocId,
    kind: DocKind,
    till: Option<&str>,
    date: Option<&str>,
) -> Result<(), NodeError> {
    tx.execute(
        "INSERT OR IGNORE INTO docs(doc_id, kind, till, date) VALUES (?1, ?2, ?3, ?4)",
        params![id.0.as_slice(), kind.as_str(), till, date],
    )?;
    Ok(())
}

/// Benchmarks only: while set, this process stores its own changes without signing
/// them — the commit path as it was before signed changes, the baseline
/// `benches/till.rs` measures signing against in the same run. Peers refuse such
/// changes; nothing but a benchmark may set it.
#[cfg(feature = "test-utils")]
pub static UNSIGNED_BASELINE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// What one write appends to a document: the bytes of its new changes, the heads after
/// them, and the changes' signatures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chunk {
    pub(crate) bytes: Vec<u8>,
    pub(crate) heads: [u8; 32],
    pub(crate) sigs: Vec<ChangeSig>,
}

impl Chunk {
    /// The changes this replica made since the document was last saved, each signed by
    /// `identity` (changes every replica makes alike, such as a lazily created map, need
    /// no signature and get none).
    pub(crate) fn local(doc: &mut Doc, identity: &Identity) -> Chunk {
        #[cfg(feature = "test-utils")]
        if UNSIGNED_BASELINE.load(std::sync::atomic::Ordering::Relaxed) {
            return Chunk::merged(doc, Vec::new());
        }
        let sigs = ChangeSig::sign_own(identity, &doc.unsaved_changes());
        let bytes = doc.save_incremental();
        Chunk {
            bytes,
            heads: doc.heads_hash(),
            sigs,
        }
    }

    /// What a merge added, with the signatures the trust rules accepted.
    pub(crate) fn merged(doc: &mut Doc, sigs: Vec<ChangeSig>) -> Chunk {
        let bytes = doc.save_incremental();
        Chunk {
            bytes,
            heads: doc.heads_hash(),
            sigs,
        }
    }
}

/// Stores change signatures (a signature already held is kept).
pub(crate) fn store_sigs(tx: &Transaction<'_>, sigs: &[ChangeSig]) -> Result<(), NodeError> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO change_sigs(hash, signer, sig) VALUES (?1, ?2, ?3)",
    )?;
    for s in sigs {
        stmt.execute(params![s.hash.as_slice(), s.signer.as_slice(), s.sig])?;
    }
    Ok(())
}

/// The stored signature of a change.
pub(crate) fn sig_of(conn: &Connection, hash: &[u8; 32]) -> Result<Option<ChangeSig>, NodeError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT signer, sig FROM change_sigs WHERE hash = ?1")?
        .query_row([hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(signer, sig)| {
        Some(ChangeSig {
            hash: *hash,
            signer: signer.try_into().ok()?,
            sig,
        })
    }))
}

/// Appends a chunk of a document with its signatures and records its new heads. Empty
/// chunks (no new changes) are skipped.
pub(crate) fn append_chunk(
    tx: &Transaction<'_>,
    id: DocId,
    chunk: &Chunk,
) -> Result<(), NodeError> {
    store_sigs(tx, &chunk.sigs)?;
    let (data, heads) = (&chunk.bytes, &chunk.heads);
    if data.is_empty() {
        return Ok(());
    }
    let registered = tx.execute(
        "UPDATE docs SET heads = ?2 WHERE doc_id = ?1",
        params![id.0.as_slice(), heads.as_slice()],
    )?;
    // A chunk of a document missing from `docs` would never be listed in the manifest,
    // so it would never sync: refuse it loudly (call `register_doc` first).
    if registered == 0 {
        return Err(NodeError::Corrupt(format!(
            "a chunk of document {id}, which is not registered"
        )));
    }
    tx.execute(
        "INSERT INTO chunks(doc_id, data) VALUES (?1, ?2)",
        params![id.0.as_slice(), data],
    )?;
    tx.execute(
        "UPDATE docs SET n_chunks = n_chunks + 1 WHERE doc_id = ?1",
        [id.0.as_slice()],
    )?;
    Ok(())
}

/// Loads a document from its chunks; `None` if the node does not hold it.
pub(crate) fn load_doc(
    conn: &Connection,
    id: DocId,
    kind: DocKind,
    actor: ActorId,
) -> Result<Option<Doc>, NodeError> {
    let mut stmt = conn.prepare_cached("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let chunks: Vec<Vec<u8>> = stmt
        .query_map([id.0.as_slice()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if chunks.is_empty() {
        return Ok(None);
    }
    let doc = Doc::load(id, kind, chunks.iter().map(Vec::as_slice), actor)
        .map_err(|e| NodeError::Corrupt(format!("{} document {id}: {e}", kind.as_str())))?;
    Ok(Some(doc))
}

/// Number of chunks a document has on disk.
pub(crate) fn chunk_count(conn: &Connection, id: DocId) -> Result<i64, NodeError> {
    Ok(conn
        .query_row(
            "SELECT n_chunks FROM docs WHERE doc_id = ?1",
            [id.0.as_slice()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Replaces all chunks of `doc` by one compacted snapshot, atomically.
///
/// The snapshot is of the in-memory document, which holds at least every chunk on disk
/// (chunks are only written from it or merged into it before being written).
pub(crate) fn compact(conn: &mut Connection, doc: &mut Doc) -> Result<(), NodeError> {
    let snapshot = doc.save();
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM chunks WHERE doc_id = ?1",
        [doc.id().0.as_slice()],
    )?;
    tx.execute(
        "INSERT INTO chunks(doc_id, data) VALUES (?1, ?2)",
        params![doc.id().0.as_slice(), snapshot],
    )?;
    tx.execute(
        "UPDATE docs SET n_chunks = 1 WHERE doc_id = ?1",
        [doc.id().0.as_slice()],
    )?;
    tx.commit()?;
    Ok(())
}

/// All documents of a kind.
pub(crate) fn docs_of_kind(conn: &Connection, kind: DocKind) -> Result<Vec<DocEntry>, NodeError> {
    Ok(manifest(conn)?
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect())
}

/// One document of the manifest: what it is and the hash of its heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocEntry {
    /// The document.
    pub id: DocId,
    /// Its kind.
    pub kind: DocKind,
    /// The writing till, for ledgers.
    pub till: Option<String>,
    /// The business date, for ledgers.
    pub date: Option<String>,
    /// blake3 of its sorted heads (zeros when unknown).
    pub heads: [u8; 32],
}

/// Every document this node holds, with its heads hash.
pub(crate) fn manifest(conn: &Connection) -> Result<Vec<DocEntry>, NodeError> {
    let mut stmt = conn
        .prepare_cached("SELECT doc_id, kind, till, date, heads FROM docs ORDER BY kind, date")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, kind, till, date, heads)| {
            let id: [u8; 32] = id.try_into().map_err(|_| {
                NodeError::Corrupt("a document id in the docs table is malformed".into())
            })?;
            let kind = kind
                .parse()
                .map_err(|_| NodeError::Corrupt(format!("unknown document kind {kind:?}")))?;
            let heads = heads.and_then(|h| h.try_into().ok()).unwrap_or([0; 32]);
            Ok(DocEntry {
                id: DocId(id),
                kind,
                till,
                date,
                heads,
            })
        })
        .collect()
}
