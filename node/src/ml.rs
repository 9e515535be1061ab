//! Product recognition on the till (`kasir ml ...`, `POST /v1/ml/recognize`).
//!
//! - The model is loaded once per process and shared (`kasir_ml::Model` clones share the
//!   plan). Its expected hash is the one the store document names
//!   (`StoreDoc::active_model`), or the build's bundled model when none is named; a file
//!   with another hash is refused.
//! - The gallery is built from the catalog's `ml_references` (references of other models
//!   are skipped) and cached per catalog heads, so an enrolment synced from another till
//!   is picked up on the next request.
//! - Enrolment and feedback write the catalog (new references) and, for feedback, the
//!   till's ledger (`kasir.ml.v1` event), durably like every other write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kasir_crdt::catalog::MlReference;
use kasir_crdt::ids::{DocId, DocKind, product_id};
use kasir_ml::{BUNDLED_MODEL_BLAKE3, Embedding, Gallery, Model, ModelHash, Recognition};
use rusqlite::TransactionBehavior;
use serde::Serialize;

use crate::error::NodeError;
use crate::node::{Node, now_ms};
use crate::storage;

/// Largest photo accepted (bytes).
pub const MAX_IMAGE_BYTES: usize = 16 * 1024 * 1024;

/// The model file: `KASIR_ML_MODEL`, else the model committed in the source tree.
pub fn model_path() -> PathBuf {
    std::env::var_os("KASIR_ML_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(kasir_ml::bundled_model_path)
}

/// The answer of `kasir ml recognize` and `POST /v1/ml/recognize`.
#[derive(Debug, Clone, Serialize)]
pub struct RecognizeOutcome {
    /// Best SKUs first.
    pub matches: Vec<kasir_ml::Match>,
    /// Whether the best score reaches the store's threshold.
    pub known: bool,
    /// Preprocessing, inference and search time.
    pub elapsed_ms: f64,
}

/// What recognition needs, taken from the node under its lock and then used without it.
#[derive(Debug, Clone)]
pub struct Matcher {
    model: Model,
    gallery: Arc<Gallery>,
}

impl Matcher {
    /// Recognises one photo (JPEG or PNG bytes).
    pub fn recognize(&self, image: &[u8], top: usize) -> Result<RecognizeOutcome, NodeError> {
        let started = Instant::now();
        let embedding = embed(&self.model, image)?;
        let Recognition { matches, known } = self.gallery.recognize(&embedding, top.clamp(1, 50));
        Ok(RecognizeOutcome {
            matches,
            known,
            elapsed_ms: (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
        })
    }
}

static MODEL: Mutex<Option<Model>> = Mutex::new(None);
/// The gallery last built: (catalog heads hash, model, gallery).
type CachedGallery = ([u8; 32], ModelHash, Arc<Gallery>);
static GALLERY: Mutex<Option<CachedGallery>> = Mutex::new(None);

fn embed(model: &Model, image: &[u8]) -> Result<Embedding, NodeError> {
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
        let mut cached = MODEL
            .lock()
            .map_err(|_| NodeError::Invalid("model cache poisoned".into()))?;
        if let Some(m) = cached.as_ref().filter(|m| m.hash() == expected) {
            return Ok(m.clone());
        }
        let m = Model::load(&model_path(), Some(expected))
            .map_err(|e| NodeError::Corrupt(e.to_string()))?;
        *cached = Some(m.clone());
        Ok(m)
    }

    /// The model and the store's gallery, for recognising outside the node's lock.
    pub fn ml_matcher(&mut self) -> Result<Matcher, NodeError> {
        let model = self.ml_model()?;
        let heads = self.catalog()?.doc().heads_hash();
        let mut cached = GALLERY
            .lock()
            .map_err(|_| NodeError::Invalid("gallery cache poisoned".into()))?;
        if let Some((h, m, g)) = cached.as_ref()
            && *h == heads
            && *m == model.hash()
        {
            return Ok(Matcher {
                model,
                gallery: g.clone(),
            });
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
        Ok(Matcher { model, gallery })
    }

    /// Recognises one photo.
    pub fn ml_recognize(
        &mut self,
        image: &[u8],
        top: usize,
    ) -> Result<RecognizeOutcome, NodeError> {
        self.ml_matcher()?.recognize(image, top)
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
        self.add_references(sku, &model, &embeddings)?;
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
        let embedding = embed(&matcher.model, image)?;
        let predicted = matcher.gallery.recognize(&embedding, 1);
        let reference =
            self.add_references(sku, &matcher.model, std::slice::from_ref(&embedding))?;
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
            |_| Ok(()),
        )
    }

    fn ensure_product(&mut self, sku: &str) -> Result<(), NodeError> {
        let id = product_id(self.store_id(), sku);
        match self.catalog()?.product(&id)? {
            Some(_) => Ok(()),
            None => Err(NodeError::UnknownSku(sku.to_owned())),
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
            let bytes = catalog.doc().save_incremental();
            let heads = catalog.doc().heads_hash();
            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            storage::register_doc(&tx, catalog_id, DocKind::Catalog, None, None)?;
            storage::append_chunk(&tx, catalog_id, &bytes, &heads)?;
            tx.commit()?;
            Ok(())
        })();
        self.after_write(DocKind::Catalog, result)?;
        self.maybe_compact(catalog_id)?;
        if self.store.active_model().is_none() {
            let hex = model.hash().to_hex();
            let result = (|| -> Result<(), NodeError> {
                self.store.set_active_model(&hex, at_ms)?;
                let doc = self.store.doc();
                let heads = doc.heads_hash();
                let bytes = doc.save_incremental();
                let tx = self.db.transaction()?;
                storage::append_chunk(&tx, doc.id(), &bytes, &heads)?;
                tx.commit()?;
                Ok(())
            })();
            self.after_write(DocKind::Store, result)?;
            self.maybe_compact(DocId::store(self.store_id()))?;
        }
        Ok(ids)
    }
}
