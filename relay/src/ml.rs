//! Recognition questions from tills (`kasir/ml/1`): the cloud fallback of product
//! recognition.
//!
//! A till asks when its own gallery does not know a photo (see `kasir_sync::recognition`
//! for the wire). The relay answers from the union of the galleries of **every store of
//! the asking store's tenant** — head office's gallery: a product enrolled at one outlet
//! is recognised at every outlet.
//!
//! - **Who may ask:** the connection's endpoint id (iroh authenticates it) must be a
//!   member of the store the request names, checked against that store's roster in its
//!   replica, as sync sessions are. The tenant comes from the store, never from the
//!   request, so a till never sees another tenant's SKUs.
//! - **Galleries** come from PostgreSQL: each store's catalog chunks, loaded into one
//!   `kasir_ml::Gallery` per model and cached by the catalog's version (number of chunks
//!   and highest sequence number), so a question costs one small query plus the scan.
//!   At most [`MAX_STORES`] catalogs (the most recently written) are searched per tenant.
//! - **Who owns what:** the accept loop hands each `kasir/ml/1` connection to [`serve`],
//!   which answers every stream of it in a task of its own; [`Galleries`] lives in the
//!   [`Relay`] and is shared by all of them.
//! - **Bounds:** a request is at most `MAX_MESSAGE` (64 KiB) and must arrive within
//!   [`READ_TIMEOUT`]; `k` is clamped to `MAX_K`; a refused question gets the reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::{ActorId, DeviceId, Doc, DocId, DocKind, StoreId};
use kasir_ml::{Embedding, Gallery, ModelHash};
use kasir_sync::recognition::{MAX_K, MAX_MESSAGE, MlRequest, MlResponse, RemoteMatch};
use kasir_sync::transport::{MessageReader, MessageWriter, TransportError, device_of};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::db::DbError;
use crate::net::Relay;

/// Most stores whose galleries one question searches (the most recently changed).
pub const MAX_STORES: i64 = 256;

/// How long a till has to send its question once it opened a stream.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a question was not answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlError {
    /// PostgreSQL.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The stream: too large, cut, or not postcard.
    #[error(transparent)]
    Wire(#[from] TransportError),
    /// The asker may not ask this, or asked nonsense.
    #[error("refused: {0}")]
    Refused(String),
}

/// A store's galleries by model, and the catalog version they were built from.
#[derive(Debug)]
struct Cached {
    version: (i64, i64),
    by_model: HashMap<ModelHash, Arc<Gallery>>,
}

/// The galleries of the stores questions were asked about, cached per catalog version.
#[derive(Debug, Default)]
pub struct Galleries {
    cache: Mutex<HashMap<StoreId, Cached>>,
}

impl Galleries {
    /// An empty cache.
    pub fn new() -> Galleries {
        Galleries::default()
    }

    /// The galleries of `model` of the stores of `tenant` (at most [`MAX_STORES`]),
    /// reloading each store whose catalog changed since it was cached.
    pub async fn of_tenant(
        &self,
        pool: &PgPool,
        tenant: Uuid,
        model: ModelHash,
    ) -> Result<Vec<(StoreId, Arc<Gallery>)>, DbError> {
        let rows = sqlx::query(
            "SELECT c.store_id, count(*) AS n, max(c.seq) AS top
             FROM stores s
             JOIN docs d ON d.store_id = s.store_id AND d.kind = 1
             JOIN doc_chunks c ON c.store_id = d.store_id AND c.doc_id = d.doc_id
             WHERE s.tenant_id = $1
             GROUP BY c.store_id ORDER BY top DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(MAX_STORES)
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let store = StoreId(r.try_get("store_id")?);
            let version: (i64, i64) = (r.try_get("n")?, r.try_get("top")?);
            let cached = self.cache.lock().ok().and_then(|c| {
                c.get(&store)
                    .filter(|c| c.version == version)
                    .map(|c| c.by_model.get(&model).cloned())
            });
            let gallery = match cached {
                Some(g) => g,
                None => {
                    let chunks: Vec<Vec<u8>> = sqlx::query_scalar(
                        "SELECT bytes FROM doc_chunks WHERE store_id = $1 AND doc_id = $2
                         ORDER BY seq",
                    )
                    .bind(store.0)
                    .bind(DocId::catalog(store).0.to_vec())
                    .fetch_all(pool)
                    .await?;
                    let by_model = tokio::task::block_in_place(|| galleries_of(store, &chunks));
                    let g = by_model.get(&model).cloned();
                    if let Ok(mut c) = self.cache.lock() {
                        c.insert(store, Cached { version, by_model });
                    }
                    g
                }
            };
            if let Some(g) = gallery {
                out.push((store, g));
            }
        }
        Ok(out)
    }
}

/// One gallery per model from a store's catalog chunks. A catalog that does not load,
/// and references that do not decode, are skipped: the tills hold the truth.
fn galleries_of(store: StoreId, chunks: &[Vec<u8>]) -> HashMap<ModelHash, Arc<Gallery>> {
    let doc = Doc::load(
        DocId::catalog(store),
        DocKind::Catalog,
        chunks.iter().map(Vec::as_slice),
        ActorId::random(),
    );
    let catalog = match doc.and_then(CatalogDoc::from_doc) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%store, error = %e, "a stored catalog does not load; its gallery is skipped");
            return HashMap::new();
        }
    };
    let mut by_model: HashMap<ModelHash, Gallery> = HashMap::new();
    for entry in catalog.ml_references() {
        let Ok((id, r)) = entry else { continue };
        let Some(model) = ModelHash::from_hex(&r.model) else {
            continue;
        };
        let Ok(e) = Embedding::from_le_bytes(&r.embedding) else {
            continue;
        };
        let _ = by_model
            .entry(model)
            .or_insert_with(|| Gallery::new(model))
            .add(&id, &r.sku, model, &e);
    }
    by_model
        .into_iter()
        .map(|(m, g)| (m, Arc::new(g)))
        .collect()
}

/// The best `k` SKUs for `query` over several stores' galleries: one entry per SKU, its
/// best score and the store it came from; best first.
pub fn search(
    galleries: &[(StoreId, Arc<Gallery>)],
    query: &Embedding,
    k: usize,
) -> Vec<RemoteMatch> {
    // A SKU in the overall top k is in the top k of the store where it scores best.
    let mut best: HashMap<String, (f32, StoreId)> = HashMap::new();
    for (store, g) in galleries {
        for m in g.recognize(query, k).matches {
            let e = best.entry(m.sku).or_insert((f32::NEG_INFINITY, *store));
            if m.score > e.0 {
                *e = (m.score, *store);
            }
        }
    }
    let mut out: Vec<RemoteMatch> = best
        .into_iter()
        .map(|(sku, (score, store))| RemoteMatch {
            sku,
            score,
            store: *store.0.as_bytes(),
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.sku.cmp(&b.sku)));
    out.truncate(k);
    out
}

/// Answers the questions of one `kasir/ml/1` connection until the till closes it.
pub async fn serve(relay: Relay, conn: Connection) -> Result<(), MlError> {
    let peer = device_of(conn.remote_id());
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            // The till closed the connection, or it went idle.
            Err(_) => return Ok(()),
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            if let Err(e) = answer_stream(&relay, peer, send, recv).await {
                tracing::debug!(%peer, error = %e, "recognition question failed");
            }
        });
    }
}

async fn answer_stream(
    relay: &Relay,
    peer: DeviceId,
    send: SendStream,
    recv: RecvStream,
) -> Result<(), MlError> {
    let question = tokio::time::timeout(
        READ_TIMEOUT,
        MessageReader::new(recv, MAX_MESSAGE).expect::<MlRequest>(),
    )
    .await
    .map_err(|_| MlError::Refused("no question within 5 s".into()))?;
    let response = match question {
        Err(TransportError::Wire(_)) => Err(MlError::Refused("malformed question".into())),
        Err(e) => Err(e.into()),
        Ok(req) => answer(relay, peer, &req).await,
    };
    let metrics = relay.metrics();
    let response = match response {
        Ok(matches) => {
            metrics.ml_answered.inc();
            MlResponse::Matches(matches)
        }
        Err(e) => {
            metrics.ml_refused.inc();
            tracing::warn!(%peer, error = %e, "refused a recognition question");
            MlResponse::Refused(e.to_string())
        }
    };
    let mut writer = MessageWriter::new(send, MAX_MESSAGE);
    writer.send(&response).await?;
    writer.finish();
    Ok(())
}

/// Checks the asker against the store's roster, then searches the tenant's galleries.
async fn answer(
    relay: &Relay,
    peer: DeviceId,
    req: &MlRequest,
) -> Result<Vec<RemoteMatch>, MlError> {
    let store = StoreId(Uuid::from_bytes(req.store));
    let (standing, tenant) = relay
        .standing(store, peer)
        .await
        .map_err(|e| MlError::Refused(e.to_string()))?;
    if !standing.is_member() {
        return Err(MlError::Refused(format!(
            "{peer} is not a member of {store}"
        )));
    }
    let query = Embedding::from_le_bytes(&req.embedding)
        .map_err(|e| MlError::Refused(format!("bad embedding: {e}")))?;
    let k = usize::from(req.k).clamp(1, MAX_K);
    let galleries = relay
        .ml_galleries()
        .of_tenant(relay.pool(), tenant, ModelHash(req.model))
        .await?;
    let matches = tokio::task::block_in_place(|| search(&galleries, &query, k));
    tracing::debug!(%peer, %store, stores = galleries.len(), found = matches.len(), "answered a recognition question");
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: usize) -> Embedding {
        let mut v = vec![0.0; kasir_ml::DIM];
        v[i] = 1.0;
        Embedding::normalised(&v).expect("unit vector")
    }

    #[test]
    fn search_merges_stores_keeping_each_skus_best() {
        let m = ModelHash([1; 32]);
        let (s1, s2) = (StoreId(Uuid::from_u128(1)), StoreId(Uuid::from_u128(2)));
        let mut g1 = Gallery::new(m);
        g1.add("a", "KOPI", m, &unit(0)).expect("add");
        g1.add("b", "TEH", m, &unit(1)).expect("add");
        let mut g2 = Gallery::new(m);
        let mut near = vec![0.0; kasir_ml::DIM];
        near[0] = 1.0;
        near[1] = 0.1;
        g2.add("c", "KOPI", m, &Embedding::normalised(&near).expect("near"))
            .expect("add");
        g2.add("d", "SUSU", m, &unit(2)).expect("add");
        let galleries = vec![(s1, Arc::new(g1)), (s2, Arc::new(g2))];
        let found = search(&galleries, &unit(0), 2);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].sku, "KOPI");
        assert_eq!(found[0].store, *s1.0.as_bytes(), "the exact reference wins");
        assert!((found[0].score - 1.0).abs() < 1e-5);
        assert!(search(&[], &unit(0), 3).is_empty());
    }
}
