//! Product recognition on the till (`kasir ml ...`, `POST /v1/ml/...`).
//!
//! - The model is loaded once per process and shared (`kasir_ml::Model` clones share the
//!   plan). Its expected hash is the one the store document names
//!   (`StoreDoc::active_model`), or the build's bundled model when none is named; a file
//!   with another hash is refused.
//! - The gallery is built from the catalog's `ml_references` (references of other models
//!   are skipped) and cached per catalog heads, so an enrolment synced from another till
//!   is picked up on the next request. The known/unknown threshold is the store
//!   profile's `ml_threshold`, else [`kasir_ml::DEFAULT_THRESHOLD`].
//! - When the local answer is unknown and the store has a relay, it is asked within a
//!   short deadline (`kasir_sync::recognition`); see [`Matcher::recognize_local`] and
//!   [`Node::ml_settle`].
//! - Enrolment and feedback write the catalog (new references) and, for feedback, the
//!   till's ledger (`kasir.ml.v1` event), durably like every other write. The daemon
//!   computes embeddings outside the node's lock and writes them under it
//!   ([`Node::ml_enroll_embeddings`], [`Node::ml_feedback_embedding`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kasir_crdt::catalog::MlReference;
use kasir_crdt::ids::{DocId, DocKind, product_id};
use kasir_crdt::store::Role;
use kasir_crdt::{DeviceId, StoreId};
use kasir_ml::{BUNDLED_MODEL_BLAKE3, DEFAULT_THRESHOLD, Embedding, Gallery, Model, ModelHash};
use rusqlite::TransactionBehavior;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Node, now_ms};
use crate::storage;
use kasir_sync::Membership;
pub use kasir_sync::recognition as fallback;
use kasir_sync::recognition::{FallbackClient, FallbackError, MAX_K, MlRequest, RemoteMatch};

/// Largest photo accepted (bytes).
pub const MAX_IMAGE_BYTES: usize = 16 * 1024 * 1024;

/// The model's file name where an installation puts it.
pub const MODEL_FILE: &str = "efficientnet_lite0.onnx";

/// The model file: `KASIR_ML_MODEL`, else the first that exists of: next to the `kasir`
/// executable, `../share/kasir/` from it (a `/usr/local/bin` + `/usr/local/share` install),
/// and the model committed in the source tree (a `cargo run` checkout). Whichever file is
/// found, its blake3 must match the store's active model before it is used.
pub fn model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KASIR_ML_MODEL") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().ok();
    model_candidates(exe.as_deref())
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(kasir_ml::bundled_model_path)
}

/// Where an installed model is looked for, in order (see [`model_path`]).
pub fn model_candidates(exe: Option<&std::path::Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = exe.and_then(std::path::Path::parent) {
        out.push(dir.join(MODEL_FILE));
        out.push(dir.join("../share/kasir").join(MODEL_FILE));
    }
    out.push(kasir_ml::bundled_model_path());
    out
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// This till's gallery.
    Local,
    /// The relay: the galleries of every store of the tenant.
    Relay,
}

/// One scored SKU of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeMatch {
    /// The product.
    pub sku: String,
    /// Best cosine similarity among its references.
    pub score: f32,
    /// The store whose reference matched best, when the relay answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// What asking the relay gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackReport {
    /// `answered` (the relay recognised the photo), `unknown` (it answered, but nothing
    /// this store sells reached the threshold), or why there was no answer: `timeout`,
    /// `unreachable`, `refused`, `malformed`, `skipped`.
    pub outcome: String,
    /// Time spent asking.
    pub elapsed_ms: f64,
}

/// The answer of `kasir ml recognize` and `POST /v1/ml/recognize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecognizeOutcome {
    /// Best SKUs first.
    pub matches: Vec<OutcomeMatch>,
    /// Whether the best score reaches the store's threshold.
    pub known: bool,
    /// Preprocessing, inference, search and fallback time.
    pub elapsed_ms: f64,
    /// Which gallery the matches come from.
    pub source: Source,
    /// Present when the relay was asked (the local answer was unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackReport>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// What recognition needs, taken from the node under its lock and then used without it.
#[derive(Debug, Clone)]
pub struct Matcher {
    model: Model,
    gallery: Arc<Gallery>,
    threshold: f32,
    store: StoreId,
    relays: Vec<(DeviceId, Vec<SocketAddr>)>,
}

/// A question for the relay, prepared when the local answer is unknown and the store
/// has a relay with addresses.
#[derive(Debug, Clone)]
pub struct FallbackQuery {
    request: MlRequest,
    relays: Vec<(DeviceId, Vec<SocketAddr>)>,
    top: usize,
}

/// The relay's answer (or why there is none), for [`Node::ml_settle`].
#[derive(Debug, Clone)]
pub struct FallbackAnswer {
    result: Result<Vec<RemoteMatch>, FallbackError>,
    elapsed: Duration,
    top: usize,
}

impl FallbackQuery {
    /// Asks through `client`, never longer than `deadline`.
    pub async fn ask(&self, client: &FallbackClient, deadline: Duration) -> FallbackAnswer {
        let started = Instant::now();
        let result = client.ask(&self.relays, &self.request, deadline).await;
        self.answer(result, started.elapsed())
    }

    /// An answer obtained some other way (or a failure to get one).
    pub fn answer(
        &self,
        result: Result<Vec<RemoteMatch>, FallbackError>,
        elapsed: Duration,
    ) -> FallbackAnswer {
        FallbackAnswer {
            result,
            elapsed,
            top: self.top,
        }
    }
}

impl Matcher {
    /// The score from which a photo counts as known.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The embedding of one photo (JPEG or PNG bytes).
    pub fn embed(&self, image: &[u8]) -> Result<Embedding, NodeError> {
        embed(&self.model, image)
    }

    /// Recognises one photo with this till's gallery only.
    pub fn recognize(&self, image: &[u8], top: usize) -> Result<RecognizeOutcome, NodeError> {
        self.recognize_local(image, top).map(|(outcome, _)| outcome)
    }

    /// Recognises one photo with this till's gallery; when that answer is unknown and
    /// the store has a relay, also returns the question to ask it.
    pub fn recognize_local(
        &self,
        image: &[u8],
        top: usize,
    ) -> Result<(RecognizeOutcome, Option<FallbackQuery>), NodeError> {
        let started = Instant::now();
        let embedding = self.embed(image)?;
        let mut outcome = self.search(&embedding, top);
        outcome.elapsed_ms = ms(started.elapsed());
        let query = (!outcome.known && !self.relays.is_empty()).then(|| {
            let top = top.clamp(1, MAX_K);
            FallbackQuery {
                request: MlRequest {
                    store: *self.store.0.as_bytes(),
                    model: self.model.hash().0,
                    embedding: embedding.to_le_bytes(),
                    // Some room: SKUs this store does not sell are dropped from the answer.
                    k: (top + 5).min(MAX_K) as u16,
                },
                relays: self.relays.clone(),
                top,
            }
        });
        Ok((outcome, query))
    }

    /// The local answer for an embedding (without timing).
    fn search(&self, embedding: &Embedding, top: usize) -> RecognizeOutcome {
        let r = self.gallery.recognize(embedding, top.clamp(1, MAX_K));
        let known = r.matches.first().is_some_and(|m| m.score >= self.threshold);
        RecognizeOutcome {
            matches: r
                .matches
                .into_iter()
                .map(|m| OutcomeMatch {
                    sku: m.sku,
                    score: m.score,
                    store: None,
                })
                .collect(),
            known,
            elapsed_ms: 0.0,
            source: Source::Local,
            fallback: None,
        }
    }
}

static MODEL: Mutex<Option<Model>> = Mutex::new(None);
/// The gallery last built: (catalog heads hash, model, gallery).
type CachedGallery = ([u8; 32], ModelHash, Arc<Gallery>);
static GALLERY: Mutex<Option<CachedGallery>> = Mutex::new(None);

pub(crate) fn embed(model: &Model, image: &[u8]) -> Result<Embedding, NodeError> {
    if image.len() > MAX_IMAGE_BYTES {
        return Err(NodeError::Invalid(format!(
            "photo larger than {MAX_IMAGE_BYTES} bytes"
        )));
    }
    model.embed(image).map_err(|e| match e {
        kasir_ml::InferError::Decode(d) => NodeError::Invalid(d.to_string()),
        other => NodeError::Corrupt(other.to_string()),
    })
}

impl Node {
    /// The hash of the model this store uses.
    pub fn ml_active_model(&self) -> Result<ModelHash, NodeError> {
        let hex = self
            .store
            .active_model()
            .unwrap_or_else(|| BUNDLED_MODEL_BLAKE3.to_owned());
        ModelHash::from_hex(&hex)
            .ok_or_else(|| NodeError::Corrupt(format!("store names an invalid model hash {hex:?}")))
    }

    /// The store's model, loaded once per process; refused if the file's hash differs.
    pub fn ml_model(&self) -> Result<Model, NodeError> {
        let expected = self.ml_active_model()?;
        let mut cached = MODEL.lock()?;
        if let Some(m) = cached.as_ref().filter(|m| m.hash() == expected) {
            return Ok(m.clone());
        }
        let m = Model::load(&model_path(), Some(expected))
            .map_err(|e| NodeError::Corrupt(e.to_string()))?;
        *cached = Some(m.clone());
        Ok(m)
    }

    /// The score from which a photo counts as known: the store profile's
    /// `ml_threshold`, else [`DEFAULT_THRESHOLD`].
    pub fn ml_threshold(&self) -> f32 {
        self.profile
            .ml_threshold
            .filter(|t| *t > 0.0 && *t <= 1.0)
            .unwrap_or(DEFAULT_THRESHOLD)
    }

    /// The store's relays (roster role `relay`, not revoked) with the addresses known
    /// for them (roster and remembered), in id order; relays without addresses are left
    /// out.
    pub fn ml_relays(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        let Ok(known) = self.peer_addresses() else {
            return Vec::new();
        };
        let mut relays: Vec<(DeviceId, Vec<SocketAddr>)> = known
            .into_iter()
            .filter(|(id, _)| matches!(self.membership(*id), Membership::Member(Role::Relay)))
            .map(|(id, addrs)| (id, addrs.iter().filter_map(|a| a.parse().ok()).collect()))
            .filter(|(_, addrs): &(DeviceId, Vec<SocketAddr>)| !addrs.is_empty())
            .collect();
        relays.sort_by_key(|(id, _)| *id);
        relays
    }

    /// The model, the store's gallery, threshold and relays, for recognising outside
    /// the node's lock.
    pub fn ml_matcher(&mut self) -> Result<Matcher, NodeError> {
        let model = self.ml_model()?;
        let threshold = self.ml_threshold();
        let store = self.store_id();
        let relays = self.ml_relays();
        let gallery = self.ml_gallery(&model)?;
        Ok(Matcher {
            model,
            gallery,
            threshold,
            store,
            relays,
        })
    }

    fn ml_gallery(&mut self, model: &Model) -> Result<Arc<Gallery>, NodeError> {
        let heads = self.catalog()?.doc().heads_hash();
        let mut cached = GALLERY.lock()?;
        if let Some((h, m, g)) = cached.as_ref()
            && *h == heads
            && *m == model.hash()
        {
            return Ok(g.clone());
        }
        let mut gallery = Gallery::new(model.hash());
        let want = model.hash().to_hex();
        for entry in self.catalog()?.ml_references() {
            // A damaged or foreign-model reference is skipped, never fatal.
            let Ok((id, r)) = entry else { continue };
            if r.model != want {
                continue;
            }
            if let Ok(e) = Embedding::from_le_bytes(&r.embedding) {
                let _ = gallery.add(&id, &r.sku, model.hash(), &e);
            }
        }
        let gallery = Arc::new(gallery);
        *cached = Some((heads, model.hash(), gallery.clone()));
        Ok(gallery)
    }

    /// Recognises one photo with this till's gallery only.
    pub fn ml_recognize(
        &mut self,
        image: &[u8],
        top: usize,
    ) -> Result<RecognizeOutcome, NodeError> {
        self.ml_matcher()?.recognize(image, top)
    }

    /// Recognises one photo, asking the relay within `deadline` when the local answer
    /// is unknown (a zero deadline never asks). Binds a short-lived endpoint with this
    /// till's identity for the question, so it is for a process that runs no sync
    /// endpoint (the CLI without a daemon); call it outside any async runtime.
    pub fn ml_recognize_with_fallback(
        &mut self,
        image: &[u8],
        top: usize,
        deadline: Duration,
    ) -> Result<RecognizeOutcome, NodeError> {
        let matcher = self.ml_matcher()?;
        let (local, query) = matcher.recognize_local(image, top)?;
        let Some(query) = query.filter(|_| !deadline.is_zero()) else {
            return Ok(local);
        };
        let secret = self.identity().secret_bytes();
        let started = Instant::now();
        let result = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(crate::lan::ask_relay_once(
                secret,
                &query.relays,
                &query.request,
                deadline,
            )),
            Err(e) => Err(FallbackError::Unreachable(e.to_string())),
        };
        let answer = query.answer(result, started.elapsed());
        self.ml_settle(local, answer)
    }

    /// Combines the local answer with the relay's: the relay's matches replace the local
    /// ones when, keeping only SKUs this store's catalog has, the best reaches the
    /// store's threshold. Otherwise the local answer stands; either way `fallback`
    /// reports what asking gave.
    pub fn ml_settle(
        &mut self,
        local: RecognizeOutcome,
        answer: FallbackAnswer,
    ) -> Result<RecognizeOutcome, NodeError> {
        let threshold = self.ml_threshold();
        let mut out = local;
        out.elapsed_ms =
            ((out.elapsed_ms + answer.elapsed.as_secs_f64() * 1e3) * 10.0).round() / 10.0;
        let outcome = match answer.result {
            Ok(remote) => {
                let store = self.store_id();
                let mut carried = Vec::new();
                for m in remote {
                    if carried.len() >= answer.top {
                        break;
                    }
                    let sold_here = matches!(
                        self.catalog()?.product(&product_id(store, &m.sku)),
                        Ok(Some(_))
                    );
                    if sold_here && m.score.is_finite() {
                        carried.push(OutcomeMatch {
                            sku: m.sku,
                            score: m.score,
                            store: Some(StoreId(uuid::Uuid::from_bytes(m.store)).to_string()),
                        });
                    }
                }
                if carried.first().is_some_and(|m| m.score >= threshold) {
                    out.matches = carried;
                    out.known = true;
                    out.source = Source::Relay;
                    "answered"
                } else {
                    "unknown"
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "no answer from the relay; the local answer stands");
                e.kind()
            }
        };
        out.fallback = Some(FallbackReport {
            outcome: outcome.to_owned(),
            elapsed_ms: ms(answer.elapsed),
        });
        Ok(out)
    }

    /// Enrols photos of `sku` (a product in the catalog); returns how many references
    /// the store now has for it.
    pub fn ml_enroll(&mut self, sku: &str, images: &[Vec<u8>]) -> Result<usize, NodeError> {
        if images.is_empty() {
            return Err(NodeError::Invalid("no photos given".into()));
        }
        self.ensure_product(sku)?;
        let model = self.ml_model()?;
        let embeddings = images
            .iter()
            .map(|b| embed(&model, b))
            .collect::<Result<Vec<_>, _>>()?;
        self.ml_enroll_embeddings(sku, &model, &embeddings)
    }

    /// Enrols embeddings of `sku` computed with `model` (outside the node's lock);
    /// returns how many references the store now has for it.
    pub fn ml_enroll_embeddings(
        &mut self,
        sku: &str,
        model: &Model,
        embeddings: &[Embedding],
    ) -> Result<usize, NodeError> {
        if embeddings.is_empty() {
            return Err(NodeError::Invalid("no photos given".into()));
        }
        self.ensure_product(sku)?;
        self.ensure_model(model)?;
        self.add_references(sku, model, embeddings)?;
        let want = model.hash().to_hex();
        Ok(self
            .catalog()?
            .ml_references()
            .into_iter()
            .filter(|r| matches!(r, Ok((_, r)) if r.sku == sku && r.model == want))
            .count())
    }

    /// Records a cashier's correction: the photo shows `sku`. Logged in the till's ledger
    /// (with what the model predicted) and added to the gallery.
    pub fn ml_feedback(&mut self, image: &[u8], sku: &str) -> Result<(), NodeError> {
        self.ensure_product(sku)?;
        let matcher = self.ml_matcher()?;
        let embedding = matcher.embed(image)?;
        self.ml_feedback_embedding(&matcher, &embedding, sku)
    }

    /// [`Node::ml_feedback`] for a photo already embedded with `matcher` (outside the
    /// node's lock).
    pub fn ml_feedback_embedding(
        &mut self,
        matcher: &Matcher,
        embedding: &Embedding,
        sku: &str,
    ) -> Result<(), NodeError> {
        self.ensure_product(sku)?;
        self.ensure_model(&matcher.model)?;
        let predicted = matcher.search(embedding, 1);
        let reference =
            self.add_references(sku, &matcher.model, std::slice::from_ref(embedding))?;
        let at_ms = now_ms();
        let event = serde_json::json!({
            "event": "kasir.ml.v1",
            "sku": sku,
            "predicted": predicted.matches.first().map(|m| m.sku.clone()),
            "score": predicted.matches.first().map(|m| m.score),
            "known": predicted.known,
            "model": matcher.model.hash().to_hex(),
            "reference": reference.first(),
            "at_ms": at_ms,
        });
        let id = uuid::Uuid::now_v7().to_string();
        self.write_ledger(
            |l| l.record_feedback(&id, &event, at_ms).map(drop),
            |_, _| Ok(()),
        )
    }

    /// Refuses a SKU the catalog does not have.
    pub(crate) fn ensure_product(&mut self, sku: &str) -> Result<(), NodeError> {
        let id = product_id(self.store_id(), sku);
        match self.catalog()?.product(&id)? {
            Some(_) => Ok(()),
            None => Err(NodeError::UnknownSku(sku.to_owned())),
        }
    }

    /// Refuses embeddings of a model other than the store's (it changed meanwhile).
    fn ensure_model(&self, model: &Model) -> Result<(), NodeError> {
        if model.hash() == self.ml_active_model()? {
            Ok(())
        } else {
            Err(NodeError::Conflict(
                "the store's recognition model changed; try again".into(),
            ))
        }
    }

    /// Writes one reference per embedding (and names the model in the store document if
    /// none is named yet); returns the new reference ids.
    fn add_references(
        &mut self,
        sku: &str,
        model: &Model,
        embeddings: &[Embedding],
    ) -> Result<Vec<String>, NodeError> {
        let at_ms = now_ms();
        let catalog_id = DocId::catalog(self.store_id());
        let mut ids = Vec::new();
        let signer = self.identity.clone();
        let result = (|| -> Result<(), NodeError> {
            let catalog = self.catalog()?;
            for e in embeddings {
                let id = uuid::Uuid::now_v7().to_string();
                catalog.add_ml_reference(
                    &id,
                    &MlReference {
                        sku: sku.to_owned(),
                        model: model.hash().to_hex(),
                        embedding: e.to_le_bytes(),
                        created_at_ms: at_ms,
                    },
                )?;
                ids.push(id);
            }
            let chunk = storage::Chunk::local(catalog.doc(), &signer);
            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            storage::register_doc(&tx, catalog_id, DocKind::Catalog, None, None)?;
            storage::append_chunk(&tx, catalog_id, &chunk)?;
            tx.commit()?;
            Ok(())
        })();
        self.after_write(DocKind::Catalog, result)?;
        self.maybe_compact(catalog_id)?;
        // Naming the model is a store setting: an owner's or manager's to write.
        if self.store.active_model().is_none() && self.may_administer() {
            let hex = model.hash().to_hex();
            let result = (|| -> Result<(), NodeError> {
                self.store.set_active_model(&hex, at_ms)?;
                let doc = self.store.doc();
                let chunk = storage::Chunk::local(doc, &self.identity);
                let tx = self.db.transaction()?;
                storage::append_chunk(&tx, doc.id(), &chunk)?;
                tx.commit()?;
                Ok(())
            })();
            self.after_write(DocKind::Store, result)?;
            self.maybe_compact(DocId::store(self.store_id()))?;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_model_next_to_the_binary_wins_over_the_source_tree() {
        let c = model_candidates(Some(std::path::Path::new("/opt/kasir/bin/kasir")));
        assert_eq!(
            c[0],
            PathBuf::from("/opt/kasir/bin/efficientnet_lite0.onnx")
        );
        assert_eq!(
            c[1],
            PathBuf::from("/opt/kasir/bin/../share/kasir/efficientnet_lite0.onnx")
        );
        assert_eq!(c[2], kasir_ml::bundled_model_path());
        assert_eq!(model_candidates(None), vec![kasir_ml::bundled_model_path()]);
    }
}
