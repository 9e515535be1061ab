//! PostgreSQL: the pool, migrations, the relay's identity, tenants, stores, tickets and
//! the document chunk store.
//!
//! Chunks are keyed by the blake3 hash of their bytes. Two instances saving the same
//! bytes write one row; different bytes of the same document are both kept and merge on
//! load (CRDT), so any number of instances may write a store at once.

use std::collections::BTreeMap;
use std::time::Duration;

use kasir_crdt::{BusinessDate, DeviceId, DocId, DocKind, StoreId};
use kasir_sync::DocRef;
use kasir_sync::trust::ChangeSig;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::replica::Parked;

/// A database operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// PostgreSQL refused or is unreachable.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No such tenant, store or ticket.
    #[error("not found: {0}")]
    NotFound(String),
    /// A request that cannot be honoured.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Stored data that does not decode.
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// Opens a pool (short acquire timeout: a relay with PostgreSQL down fails sessions fast
/// and the tills retry, rather than hanging them).
pub async fn connect(url: &str) -> Result<PgPool, DbError> {
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?)
}

/// Applies `migrations/`.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("../migrations").run(pool).await?;
    Ok(())
}

/// Records that `device` of `store` synced just now (`connected`: a session opened; else
/// it closed).
pub async fn till_seen(
    pool: &PgPool,
    tenant: Uuid,
    store: StoreId,
    device: DeviceId,
    till_code: &str,
    role: &str,
    connected: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO till_seen (tenant_id, store_id, device_id, till_code, role, last_seen, connected)
         VALUES ($1, $2, $3, $4, $5, clock_timestamp(), $6)
         ON CONFLICT (store_id, device_id) DO UPDATE SET till_code = excluded.till_code,
             role = excluded.role, last_seen = excluded.last_seen, connected = excluded.connected",
    )
    .bind(tenant)
    .bind(store.0)
    .bind(device.to_string())
    .bind(till_code)
    .bind(role)
    .bind(connected)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks `device` of `store` revoked on head office's Perangkat page.
pub async fn till_revoked(pool: &PgPool, store: StoreId, device: DeviceId) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE till_seen SET revoked = true, connected = false
          WHERE store_id = $1 AND device_id = $2",
    )
    .bind(store.0)
    .bind(device.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores change signatures of `store` (one already held is kept).
pub async fn store_sigs(
    tx: &mut Transaction<'_, Postgres>,
    store: StoreId,
    sigs: &[ChangeSig],
) -> Result<(), DbError> {
    if sigs.is_empty() {
        return Ok(());
    }
    let hashes: Vec<Vec<u8>> = sigs.iter().map(|s| s.hash.to_vec()).collect();
    let signers: Vec<Vec<u8>> = sigs.iter().map(|s| s.signer.to_vec()).collect();
    let values: Vec<Vec<u8>> = sigs.iter().map(|s| s.sig.clone()).collect();
    sqlx::query(
        "INSERT INTO change_sigs(store_id, hash, signer, sig)
         SELECT $1, * FROM UNNEST($2::bytea[], $3::bytea[], $4::bytea[])
         ON CONFLICT (store_id, hash) DO NOTHING",
    )
    .bind(store.0)
    .bind(&hashes)
    .bind(&signers)
    .bind(&values)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stored signatures of `store`, all of them (`hashes` `None`) or of those changes.
pub async fn sigs(
    pool: &PgPool,
    store: StoreId,
    hashes: Option<&[[u8; 32]]>,
) -> Result<Vec<ChangeSig>, DbError> {
    let rows = match hashes {
        None => {
            sqlx::query("SELECT hash, signer, sig FROM change_sigs WHERE store_id = $1")
                .bind(store.0)
                .fetch_all(pool)
                .await?
        }
        Some(hashes) => {
            let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
            sqlx::query(
                "SELECT hash, signer, sig FROM change_sigs
                 WHERE store_id = $1 AND hash = ANY($2)",
            )
            .bind(store.0)
            .bind(&hashes)
            .fetch_all(pool)
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let hash: Vec<u8> = r.try_get("hash")?;
            let signer: Vec<u8> = r.try_get("signer")?;
            let corrupt = || DbError::Corrupt("a change signature of the wrong length".into());
            Ok(ChangeSig {
                hash: hash.try_into().map_err(|_| corrupt())?,
                signer: signer.try_into().map_err(|_| corrupt())?,
                sig: r.try_get("sig")?,
            })
        })
        .collect()
}

/// The relay's shared secrets.
#[derive(Clone)]
pub struct RelayIdentity {
    /// iroh secret key (every instance serves under this endpoint id).
    pub secret_key: [u8; 32],
    /// HS256 secret of head-office tokens.
    pub jwt_secret: Vec<u8>,
}

impl std::fmt::Debug for RelayIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayIdentity(..)")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b
}

/// The identity, created on first use (concurrent first uses agree on one row).
pub async fn identity(pool: &PgPool) -> Result<RelayIdentity, DbError> {
    sqlx::query(
        "INSERT INTO relay_identity(id, secret_key, jwt_secret) VALUES (1, $1, $2)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(random_bytes::<32>().to_vec())
    .bind(random_bytes::<48>().to_vec())
    .execute(pool)
    .await?;
    let row = sqlx::query("SELECT secret_key, jwt_secret FROM relay_identity WHERE id = 1")
        .fetch_one(pool)
        .await?;
    let key: Vec<u8> = row.try_get("secret_key")?;
    let secret_key: [u8; 32] = key
        .try_into()
        .map_err(|_| DbError::Corrupt("relay secret key is not 32 bytes".into()))?;
    Ok(RelayIdentity {
        secret_key,
        jwt_secret: row.try_get("jwt_secret")?,
    })
}

/// Creates a tenant.
pub async fn create_tenant(pool: &PgPool, name: &str) -> Result<Uuid, DbError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 200 {
        return Err(DbError::Invalid(
            "a tenant name is 1 to 200 printable characters".into(),
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO tenants(tenant_id, name) VALUES ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(id)
}

/// Registers a store of `tenant` (fails if the store is already served for a tenant).
pub async fn create_store(
    tx: &mut Transaction<'_, Postgres>,
    tenant: Uuid,
    store: StoreId,
    name: &str,
) -> Result<(), DbError> {
    let exists: Option<Uuid> =
        sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_none() {
        return Err(DbError::NotFound(format!("tenant {tenant}")));
    }
    let inserted = sqlx::query(
        "INSERT INTO stores(store_id, tenant_id, name) VALUES ($1, $2, $3)
         ON CONFLICT (store_id) DO NOTHING",
    )
    .bind(store.0)
    .bind(tenant)
    .bind(name)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        let owner: Uuid = sqlx::query_scalar("SELECT tenant_id FROM stores WHERE store_id = $1")
            .bind(store.0)
            .fetch_one(&mut **tx)
            .await?;
        if owner != tenant {
            return Err(DbError::Invalid(format!(
                "store {store} is served for another tenant"
            )));
        }
    }
    Ok(())
}

/// The kind of a ticket the relay issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    /// A new till joins a store created on the relay.
    Join,
    /// A till hands the relay a store that began on it.
    Adopt,
}

/// Records an issued ticket by the hash of its secret.
pub async fn record_ticket(
    tx: &mut Transaction<'_, Postgres>,
    secret_hash: &str,
    store: StoreId,
    kind: TicketKind,
    ttl: Duration,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO relay_tickets(secret_hash, store_id, kind, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(secret_hash)
    .bind(store.0)
    .bind(match kind {
        TicketKind::Join => "join",
        TicketKind::Adopt => "adopt",
    })
    .bind(ttl.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A ticket found by its secret.
#[derive(Debug, Clone)]
pub struct TicketRow {
    /// The store.
    pub store: StoreId,
    /// Join or adopt.
    pub kind: TicketKind,
    /// The device that used it.
    pub used_by: Option<String>,
    /// Past its expiry.
    pub expired: bool,
}

/// Looks up a ticket.
pub async fn ticket(pool: &PgPool, secret_hash: &str) -> Result<Option<TicketRow>, DbError> {
    let row = sqlx::query(
        "SELECT store_id, kind, used_by, expires_at < now() AS expired
         FROM relay_tickets WHERE secret_hash = $1",
    )
    .bind(secret_hash)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(TicketRow {
            store: StoreId(r.try_get("store_id")?),
            kind: if r.try_get::<String, _>("kind")? == "adopt" {
                TicketKind::Adopt
            } else {
                TicketKind::Join
            },
            used_by: r.try_get("used_by")?,
            expired: r.try_get("expired")?,
        })
    })
    .transpose()
}

/// Marks an adoption ticket used by `device` (idempotent for the same device).
pub async fn use_adopt_ticket(
    pool: &PgPool,
    secret_hash: &str,
    device: DeviceId,
) -> Result<StoreId, DbError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT store_id, used_by FROM relay_tickets
         WHERE secret_hash = $1 AND kind = 'adopt' AND expires_at >= now() FOR UPDATE",
    )
    .bind(secret_hash)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| DbError::NotFound("unknown or expired ticket".into()))?;
    let store = StoreId(row.try_get("store_id")?);
    let used: Option<String> = row.try_get("used_by")?;
    match used {
        Some(u) if u != device.to_string() => {
            return Err(DbError::Invalid("this ticket was already used".into()));
        }
        _ => {}
    }
    sqlx::query("UPDATE relay_tickets SET used_by = $2 WHERE secret_hash = $1")
        .bind(secret_hash)
        .bind(device.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE stores SET adopted_by = $2 WHERE store_id = $1")
        .bind(store.0)
        .bind(device.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(store)
}

/// What the relay knows of a store it serves.
#[derive(Debug, Clone)]
pub struct StoreRow {
    /// The store.
    pub store: StoreId,
    /// Its tenant.
    pub tenant: Uuid,
    /// Its name.
    pub name: String,
    /// The till that adopted it to this relay, if it began on a till.
    pub adopted_by: Option<DeviceId>,
}

/// A served store.
pub async fn store(pool: &PgPool, store: StoreId) -> Result<Option<StoreRow>, DbError> {
    let row = sqlx::query("SELECT tenant_id, name, adopted_by FROM stores WHERE store_id = $1")
        .bind(store.0)
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        let adopted: Option<String> = r.try_get("adopted_by")?;
        Ok(StoreRow {
            store,
            tenant: r.try_get("tenant_id")?,
            name: r.try_get("name")?,
            adopted_by: adopted.and_then(|a| a.parse().ok()),
        })
    })
    .transpose()
}

/// The upgrade step after which every stored change carries a signature.
pub const SIGNED_HISTORY: &str = "signed_history";

/// Whether an upgrade step was done on this database.
pub async fn upgrade_done(pool: &PgPool, step: &str) -> Result<bool, DbError> {
    Ok(sqlx::query("SELECT 1 FROM relay_upgrades WHERE step = $1")
        .bind(step)
        .fetch_optional(pool)
        .await?
        .is_some())
}

/// Records an upgrade step as done.
pub async fn record_upgrade(pool: &PgPool, step: &str) -> Result<(), DbError> {
    sqlx::query("INSERT INTO relay_upgrades(step) VALUES ($1) ON CONFLICT (step) DO NOTHING")
        .bind(step)
        .execute(pool)
        .await?;
    Ok(())
}

/// Every served store.
pub async fn stores(pool: &PgPool) -> Result<Vec<StoreRow>, DbError> {
    let rows =
        sqlx::query("SELECT store_id, tenant_id, name, adopted_by FROM stores ORDER BY created_at")
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|r| {
            let adopted: Option<String> = r.try_get("adopted_by")?;
            Ok(StoreRow {
                store: StoreId(r.try_get("store_id")?),
                tenant: r.try_get("tenant_id")?,
                name: r.try_get("name")?,
                adopted_by: adopted.and_then(|a| a.parse().ok()),
            })
        })
        .collect()
}

fn kind_code(k: DocKind) -> i16 {
    match k {
        DocKind::Store => 0,
        DocKind::Catalog => 1,
        DocKind::Ledger => 2,
    }
}

fn kind_of(code: i16) -> Result<DocKind, DbError> {
    match code {
        0 => Ok(DocKind::Store),
        1 => Ok(DocKind::Catalog),
        2 => Ok(DocKind::Ledger),
        other => Err(DbError::Corrupt(format!("document kind {other}"))),
    }
}

/// Takes the store's write lock for the rest of the transaction (every instance's
/// persists and compactions of one store then run one at a time).
pub async fn lock_store(tx: &mut Transaction<'_, Postgres>, store: StoreId) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(store.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores one chunk of a document (registering the document on first sight). Returns
/// whether the chunk is new (false: these exact bytes were stored before).
pub async fn append_chunk(
    tx: &mut Transaction<'_, Postgres>,
    store: StoreId,
    doc: &DocRef,
    bytes: &[u8],
) -> Result<bool, DbError> {
    let date: Option<chrono::NaiveDate> = doc
        .date
        .as_ref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d.to_string(), "%Y-%m-%d").ok());
    sqlx::query(
        "INSERT INTO docs(store_id, doc_id, kind, till, business_date) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (store_id, doc_id) DO NOTHING",
    )
    .bind(store.0)
    .bind(doc.id.0.to_vec())
    .bind(kind_code(doc.kind))
    .bind(doc.till.map(|t| t.0.to_vec()))
    .bind(date)
    .execute(&mut **tx)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO doc_chunks(hash, store_id, doc_id, bytes) VALUES ($1, $2, $3, $4)
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(blake3::hash(bytes).as_bytes().to_vec())
    .bind(store.0)
    .bind(doc.id.0.to_vec())
    .bind(bytes)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// One stored chunk.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The document.
    pub doc: DocRef,
    /// blake3 of `bytes`.
    pub hash: [u8; 32],
    /// Insertion order (not commit order).
    pub seq: i64,
    /// Automerge bytes.
    pub bytes: Vec<u8>,
}

/// Chunks of `store` with `seq > after`, in seq order, with their documents.
pub async fn chunks_after(
    pool: &PgPool,
    store: StoreId,
    after: i64,
) -> Result<Vec<Chunk>, DbError> {
    let rows = sqlx::query(
        "SELECT c.hash, c.seq, c.bytes, d.doc_id, d.kind, d.till, d.business_date
         FROM doc_chunks c JOIN docs d ON d.store_id = c.store_id AND d.doc_id = c.doc_id
         WHERE c.store_id = $1 AND c.seq > $2 ORDER BY c.seq",
    )
    .bind(store.0)
    .bind(after)
    .fetch_all(pool)
    .await?;
    rows_to_chunks(rows)
}

/// The chunks of `store` to load into memory: every document's except `parked`'s (the
/// ids [`parked_docs`] listed, so no document falls between the two reads).
pub async fn unparked_chunks(
    pool: &PgPool,
    store: StoreId,
    parked: &[DocId],
) -> Result<Vec<Chunk>, DbError> {
    let parked: Vec<Vec<u8>> = parked.iter().map(|id| id.0.to_vec()).collect();
    let rows = sqlx::query(
        "SELECT c.hash, c.seq, c.bytes, d.doc_id, d.kind, d.till, d.business_date
         FROM doc_chunks c JOIN docs d ON d.store_id = c.store_id AND d.doc_id = c.doc_id
         WHERE c.store_id = $1 AND c.doc_id <> ALL($2)
         ORDER BY c.seq",
    )
    .bind(store.0)
    .bind(&parked)
    .fetch_all(pool)
    .await?;
    rows_to_chunks(rows)
}

/// The documents of `store` parked with exactly the chunks stored now, each with the
/// highest sequence number of its chunks (what [`unparked_chunks`] leaves out).
pub async fn parked_docs(pool: &PgPool, store: StoreId) -> Result<Vec<(Parked, i64)>, DbError> {
    let rows = sqlx::query(
        "WITH sets AS (
             SELECT doc_id, array_agg(hash ORDER BY hash) AS hashes, max(seq) AS seq
               FROM doc_chunks WHERE store_id = $1 GROUP BY doc_id)
         SELECT d.doc_id, d.kind, d.till, d.business_date, d.parked_heads, d.parked_chunks,
                s.seq
         FROM docs d JOIN sets s ON s.doc_id = d.doc_id
         WHERE d.store_id = $1 AND d.parked_chunks = s.hashes",
    )
    .bind(store.0)
    .fetch_all(pool)
    .await?;
    let hashes = |v: Vec<Vec<u8>>, what: &str| -> Result<Vec<[u8; 32]>, DbError> {
        v.into_iter()
            .map(|h| h.try_into().map_err(|_| DbError::Corrupt(what.into())))
            .collect()
    };
    rows.into_iter()
        .map(|r| {
            let id: Vec<u8> = r.try_get("doc_id")?;
            let doc = doc_ref(
                &id,
                r.try_get("kind")?,
                r.try_get("till")?,
                r.try_get("business_date")?,
            )?;
            let heads = hashes(r.try_get("parked_heads")?, "parked heads")?;
            Ok((
                Parked {
                    doc,
                    heads: heads.into_iter().map(kasir_crdt::doc::ChangeHash).collect(),
                    chunks: hashes(r.try_get("parked_chunks")?, "parked chunks")?,
                    stale: false,
                },
                r.try_get::<Option<i64>, _>("seq")?.unwrap_or(0),
            ))
        })
        .collect()
}

/// Records that a document left this instance's memory holding exactly `parked`'s
/// chunks, so the next load of the store need not read them ([`parked_docs`]).
pub async fn record_parked(pool: &PgPool, store: StoreId, parked: &Parked) -> Result<(), DbError> {
    let mut heads: Vec<Vec<u8>> = parked.heads.iter().map(|h| h.0.to_vec()).collect();
    heads.sort();
    let mut chunks: Vec<Vec<u8>> = parked.chunks.iter().map(|h| h.to_vec()).collect();
    chunks.sort();
    sqlx::query(
        "UPDATE docs SET parked_heads = $3, parked_chunks = $4
          WHERE store_id = $1 AND doc_id = $2",
    )
    .bind(store.0)
    .bind(parked.doc.id.0.to_vec())
    .bind(&heads)
    .bind(&chunks)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every stored chunk of one document, in sequence order.
pub async fn doc_chunks(pool: &PgPool, store: StoreId, doc: DocId) -> Result<Vec<Chunk>, DbError> {
    let rows = sqlx::query(
        "SELECT c.hash, c.seq, c.bytes, d.doc_id, d.kind, d.till, d.business_date
         FROM doc_chunks c JOIN docs d ON d.store_id = c.store_id AND d.doc_id = c.doc_id
         WHERE c.store_id = $1 AND c.doc_id = $2 ORDER BY c.seq",
    )
    .bind(store.0)
    .bind(doc.0.to_vec())
    .fetch_all(pool)
    .await?;
    rows_to_chunks(rows)
}

/// The chunks of `store`'s store document only (its roster), to check a device's
/// standing before the rest of the store's history is loaded for it.
pub async fn roster_chunks(pool: &PgPool, store: StoreId) -> Result<Vec<Chunk>, DbError> {
    doc_chunks(pool, store, DocId::store(store)).await
}

fn rows_to_chunks(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Chunk>, DbError> {
    let mut refs: BTreeMap<Vec<u8>, DocRef> = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Vec<u8> = r.try_get("doc_id")?;
        let doc = match refs.get(&id) {
            Some(d) => d.clone(),
            None => {
                let d = doc_ref(
                    &id,
                    r.try_get("kind")?,
                    r.try_get("till")?,
                    r.try_get("business_date")?,
                )?;
                refs.insert(id, d.clone());
                d
            }
        };
        let hash: Vec<u8> = r.try_get("hash")?;
        out.push(Chunk {
            doc,
            hash: hash
                .try_into()
                .map_err(|_| DbError::Corrupt("chunk hash".into()))?,
            seq: r.try_get("seq")?,
            bytes: r.try_get("bytes")?,
        });
    }
    Ok(out)
}

fn doc_ref(
    id: &[u8],
    kind: i16,
    till: Option<Vec<u8>>,
    date: Option<chrono::NaiveDate>,
) -> Result<DocRef, DbError> {
    let id: [u8; 32] = id
        .try_into()
        .map_err(|_| DbError::Corrupt("document id".into()))?;
    let till = till
        .map(|t| {
            <[u8; 32]>::try_from(t.as_slice())
                .map(DeviceId)
                .map_err(|_| DbError::Corrupt("till id".into()))
        })
        .transpose()?;
    let date = date
        .map(|d| {
            d.format("%Y-%m-%d")
                .to_string()
                .parse::<BusinessDate>()
                .map_err(|e| DbError::Corrupt(e.to_string()))
        })
        .transpose()?;
    Ok(DocRef {
        id: DocId(id),
        kind: kind_of(kind)?,
        till,
        date,
    })
}

/// For each `(store, after)`: the hashes and sequence numbers of that store's chunks
/// stored after `after`, in one query for every store an instance has loaded. Chunks of
/// one store are written under its advisory lock ([`lock_store`]), so their sequence
/// numbers follow commit order and a cursor per store misses none.
pub async fn chunk_hashes_after(
    pool: &PgPool,
    cursors: &[(StoreId, i64)],
) -> Result<Vec<(StoreId, [u8; 32], i64)>, DbError> {
    let stores: Vec<Uuid> = cursors.iter().map(|(s, _)| s.0).collect();
    let after: Vec<i64> = cursors.iter().map(|(_, a)| *a).collect();
    let rows = sqlx::query(
        "SELECT c.store_id, c.hash, c.seq
         FROM UNNEST($1::uuid[], $2::int8[]) AS u(store_id, after)
         JOIN doc_chunks c ON c.store_id = u.store_id AND c.seq > u.after",
    )
    .bind(&stores)
    .bind(&after)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let hash: Vec<u8> = r.try_get("hash")?;
            Ok((
                StoreId(r.try_get("store_id")?),
                hash.try_into()
                    .map_err(|_| DbError::Corrupt("chunk hash".into()))?,
                r.try_get("seq")?,
            ))
        })
        .collect()
}

/// The chunks of `store` with these hashes, in sequence order.
pub async fn chunks_by_hash(
    pool: &PgPool,
    store: StoreId,
    hashes: &[[u8; 32]],
) -> Result<Vec<Chunk>, DbError> {
    let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
    let rows = sqlx::query(
        "SELECT c.hash, c.seq, c.bytes, d.doc_id, d.kind, d.till, d.business_date
         FROM doc_chunks c JOIN docs d ON d.store_id = c.store_id AND d.doc_id = c.doc_id
         WHERE c.store_id = $1 AND c.hash = ANY($2) ORDER BY c.seq",
    )
    .bind(store.0)
    .bind(&hashes)
    .fetch_all(pool)
    .await?;
    rows_to_chunks(rows)
}

/// Replaces the chunks `covered` of a document by one snapshot holding all of them (and
/// maybe more). Chunks another instance wrote meanwhile are not in `covered` and stay.
pub async fn replace_chunks(
    pool: &PgPool,
    store: StoreId,
    doc: &DocRef,
    snapshot: &[u8],
    covered: &[[u8; 32]],
) -> Result<[u8; 32], DbError> {
    let hash = *blake3::hash(snapshot).as_bytes();
    let covered: Vec<Vec<u8>> = covered
        .iter()
        .filter(|h| **h != hash)
        .map(|h| h.to_vec())
        .collect();
    let mut tx = pool.begin().await?;
    lock_store(&mut tx, store).await?;
    append_chunk(&mut tx, store, doc, snapshot).await?;
    sqlx::query("DELETE FROM doc_chunks WHERE store_id = $1 AND doc_id = $2 AND hash = ANY($3)")
        .bind(store.0)
        .bind(doc.id.0.to_vec())
        .bind(&covered)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(hash)
}

/// Records where a running instance listens, for tickets and `status`.
pub async fn register_instance(
    pool: &PgPool,
    instance: Uuid,
    addrs: &[String],
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO relay_instances(instance_id, addrs) VALUES ($1, $2)
         ON CONFLICT (instance_id) DO UPDATE SET addrs = excluded.addrs, seen_at = now()",
    )
    .bind(instance)
    .bind(addrs)
    .execute(pool)
    .await?;
    Ok(())
}

/// Addresses of instances seen in the last `within`, newest first.
pub async fn instance_addrs(pool: &PgPool, within: Duration) -> Result<Vec<String>, DbError> {
    let rows: Vec<Vec<String>> = sqlx::query_scalar(
        "SELECT addrs FROM relay_instances
         WHERE seen_at > now() - make_interval(secs => $1) ORDER BY seen_at DESC",
    )
    .bind(within.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let mut out: Vec<String> = Vec::new();
    for a in rows.into_iter().flatten() {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}
