//! The catalog: the store's products, each field last-writer-wins.

use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType, ReadDoc, ScalarValue};

use crate::doc::{Doc, DocError, GenesisValue, map_fields};
use crate::ids::{DocId, DocKind, StoreId};
use crate::records::Product;

const PRODUCTS: &str = "products";
/// Few-shot recognition references, keyed by reference id. Not part of genesis: created
/// lazily by a deterministic change (see `Doc::lazy_root_map`), so catalogs made before
/// it existed keep their genesis and still merge.
const ML_REFERENCES: &str = "ml_references";

/// One product-recognition reference photo, as an embedding (the photo itself is not
/// stored). Immutable once written; keyed by a unique id (UUIDv7).
#[derive(Debug, Clone, PartialEq)]
pub struct MlReference {
    /// The product it shows.
    pub sku: String,
    /// blake3 hex of the model that computed the embedding.
    pub model: String,
    /// The L2-normalised embedding as f32 little-endian bytes.
    pub embedding: Vec<u8>,
    /// When it was enrolled.
    pub created_at_ms: i64,
}

/// The catalog document of one store.
#[derive(Debug)]
pub struct CatalogDoc {
    doc: Doc,
}

impl CatalogDoc {
    /// The catalog at its deterministic genesis.
    pub fn create(store: StoreId, actor: ActorId) -> Result<CatalogDoc, DocError> {
        let fields = [
            ("store_id", GenesisValue::Str(store.to_string())),
            (PRODUCTS, GenesisValue::Map),
        ];
        let doc = Doc::genesis(DocId::catalog(store), DocKind::Catalog, &fields, actor)?;
        Ok(CatalogDoc { doc })
    }

    /// Wraps a loaded document.
    pub fn from_doc(doc: Doc) -> Result<CatalogDoc, DocError> {
        if doc.kind() != DocKind::Catalog {
            return Err(DocError::WrongShape {
                doc: doc.id(),
                expected: "catalog",
            });
        }
        doc.root_map(PRODUCTS)?;
        Ok(CatalogDoc { doc })
    }

    /// The underlying document.
    pub fn doc(&mut self) -> &mut Doc {
        &mut self.doc
    }

    /// The underlying document, unwrapped.
    pub fn into_doc(self) -> Doc {
        self.doc
    }

    /// Read-only access to the underlying document.
    pub fn doc_ref(&self) -> &Doc {
        &self.doc
    }

    /// Writes the fields of `product` that differ from what the catalog holds and commits.
    /// Returns whether anything changed.
    pub fn upsert_product(&mut self, product: &Product) -> Result<bool, DocError> {
        let changed = self.stage_product(product)?;
        self.doc.commit(product.updated_at_ms);
        Ok(changed)
    }

    /// Writes many products in one change (imports).
    pub fn upsert_products(&mut self, products: &[Product], at_ms: i64) -> Result<usize, DocError> {
        let mut changed = 0;
        for p in products {
            match self.stage_product(p) {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => {
                    self.doc.rollback();
                    return Err(e);
                }
            }
        }
        self.doc.commit(at_ms);
        Ok(changed)
    }

    fn stage_product(&mut self, product: &Product) -> Result<bool, DocError> {
        let products = self.doc.root_map(PRODUCTS)?;
        let mut fields = match serde_json::to_value(product) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(DocError::BadRecord {
                    key: product.id.clone(),
                    reason: "product did not serialise to an object".into(),
                });
            }
        };
        // `updated_at_ms` alone must not make a no-op write look like a change.
        let stamp = fields.remove("updated_at_ms");
        let changed = self.doc.put_fields(&products, &product.id, &fields)?;
        if changed && let Some(stamp) = stamp {
            let mut only = serde_json::Map::new();
            only.insert("updated_at_ms".into(), stamp);
            self.doc.put_fields(&products, &product.id, &only)?;
        }
        Ok(changed)
    }

    /// One product by id.
    pub fn product(&self, id: &str) -> Result<Option<Product>, DocError> {
        let products = self.doc.root_map(PRODUCTS)?;
        let am = self.doc.automerge_ref();
        match am.get(&products, id)? {
            Some((automerge::Value::Object(ObjType::Map), obj)) => {
                let mut product = decode_product(id, map_fields(am, &obj)?)?;
                product.updated_at_ms = latest_stamp(am, &obj).unwrap_or(product.updated_at_ms);
                Ok(Some(product))
            }
            _ => Ok(None),
        }
    }

    /// The device whose change holds the current value of `field` of product `id`: after
    /// a concurrent edit of the same field, the one that won. `None` when the product or
    /// field is absent, or the value was written by an actor bound to no device (history
    /// from before signed changes).
    pub fn field_author(&self, id: &str, field: &str) -> Option<crate::DeviceId> {
        let products = self.doc.root_map(PRODUCTS).ok()?;
        let am = self.doc.automerge_ref();
        let (_, product) = am
            .get(&products, id)
            .ok()
            .flatten()
            .filter(|(v, _)| matches!(v, automerge::Value::Object(ObjType::Map)))?;
        match am.get(&product, field).ok().flatten()? {
            (_, automerge::ObjId::Id(_, actor, _)) => crate::author::actor_device(&actor),
            _ => None,
        }
    }

    /// The products touched by changes after `before` (what a merge brought in).
    pub fn products_since(
        &mut self,
        before: &[automerge::ChangeHash],
    ) -> Vec<Result<Product, DocError>> {
        let ids: Vec<String> = self
            .doc
            .changed_records(before)
            .into_iter()
            .filter(|(map, _)| map == PRODUCTS)
            .map(|(_, id)| id)
            .collect();
        ids.iter()
            .filter_map(|id| self.product(id).transpose())
            .collect()
    }

    /// All product ids.
    pub fn product_ids(&self) -> Vec<String> {
        match self.doc.root_map(PRODUCTS) {
            Ok(obj) => self.doc.keys(&obj).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// All products; undecodable entries come back as errors.
    pub fn products(&self) -> Vec<Result<Product, DocError>> {
        self.product_ids()
            .iter()
            .filter_map(|id| self.product(id).transpose())
            .collect()
    }
}

impl CatalogDoc {
    /// Adds a recognition reference under `id` and commits. Returns false (and writes
    /// nothing) if `id` already exists.
    pub fn add_ml_reference(
        &mut self,
        id: &str,
        reference: &MlReference,
    ) -> Result<bool, DocError> {
        let map = self.doc.lazy_root_map(ML_REFERENCES)?;
        if self.doc.has_key(&map, id) {
            return Ok(false);
        }
        let staged = (|| -> Result<(), automerge::AutomergeError> {
            let am = self.doc.automerge();
            let obj = am.put_object(&map, id, ObjType::Map)?;
            am.put(&obj, "sku", reference.sku.as_str())?;
            am.put(&obj, "model", reference.model.as_str())?;
            am.put(&obj, "created_at_ms", reference.created_at_ms)?;
            am.put(
                &obj,
                "embedding",
                ScalarValue::Bytes(reference.embedding.clone()),
            )?;
            Ok(())
        })();
        match staged {
            Ok(()) => {
                self.doc.commit(reference.created_at_ms);
                Ok(true)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e.into())
            }
        }
    }

    /// All recognition references in id order; undecodable entries come back as errors.
    /// Empty for a catalog that never had one.
    pub fn ml_references(&self) -> Vec<Result<(String, MlReference), DocError>> {
        let Some(map) = self.doc.existing_root_map(ML_REFERENCES) else {
            return Vec::new();
        };
        let am = self.doc.automerge_ref();
        am.keys(&map)
            .map(|id| {
                let bad = |reason: &str| DocError::BadRecord {
                    key: id.clone(),
                    reason: reason.to_owned(),
                };
                let Some((automerge::Value::Object(ObjType::Map), obj)) =
                    am.get(&map, id.as_str())?
                else {
                    return Err(bad("not a map"));
                };
                let scalar = |field: &str| -> Result<ScalarValue, DocError> {
                    match am.get(&obj, field)? {
                        Some((automerge::Value::Scalar(s), _)) => Ok(s.into_owned()),
                        _ => Err(bad(&format!("missing {field}"))),
                    }
                };
                let text = |field: &str| -> Result<String, DocError> {
                    match scalar(field)? {
                        ScalarValue::Str(s) => Ok(s.to_string()),
                        _ => Err(bad(&format!("{field} is not text"))),
                    }
                };
                let embedding = match scalar("embedding")? {
                    ScalarValue::Bytes(b) => b,
                    _ => return Err(bad("embedding is not bytes")),
                };
                let created_at_ms = match scalar("created_at_ms")? {
                    ScalarValue::Int(n) => n,
                    ScalarValue::Uint(n) => {
                        i64::try_from(n).map_err(|_| bad("created_at_ms out of range"))?
                    }
                    _ => return Err(bad("created_at_ms is not a number")),
                };
                Ok((
                    id.clone(),
                    MlReference {
                        sku: text("sku")?,
                        model: text("model")?,
                        embedding,
                        created_at_ms,
                    },
                ))
            })
            .collect()
    }
}

/// The latest of the product's concurrent `updated_at_ms` values. Two replicas that
/// edit a product at once each stamp it; the merged product holds both edits (field by
/// field), so it is as new as the newer of the two — not whichever stamp Automerge lets
/// win. Readers that keep only newer edits (the relay's `products` rows) rely on that.
fn latest_stamp(am: &automerge::AutoCommit, obj: &automerge::ObjId) -> Option<i64> {
    am.get_all(obj, "updated_at_ms")
        .ok()?
        .into_iter()
        .filter_map(|(value, _)| match value {
            automerge::Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Int(n) => Some(*n),
                ScalarValue::Uint(n) => i64::try_from(*n).ok(),
                ScalarValue::F64(f) => Some(*f as i64),
                _ => None,
            },
            _ => None,
        })
        .max()
}

fn decode_product(
    id: &str,
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> Result<Product, DocError> {
    // LWW fields hold nested values as JSON text.
    for nested in ["barcodes", "units", "tiers", "promos"] {
        if let Some(serde_json::Value::String(s)) = fields.get(nested)
            && let Ok(list) = serde_json::from_str::<serde_json::Value>(s)
        {
            fields.insert(nested.into(), list);
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| DocError::BadRecord {
        key: id.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::product_id;

    fn product(store: StoreId, name: &str, price: i64, at: i64) -> Product {
        Product {
            id: product_id(store, "TEH"),
            sku: "TEH".into(),
            name: name.into(),
            barcodes: vec![],
            price,
            cost: None,
            category: None,
            unit: "pcs".into(),
            tax_code: None,
            active: true,
            min_stock: None,
            updated_at_ms: at,
            units: Vec::new(),
            tiers: Vec::new(),
            promos: Vec::new(),
        }
    }

    #[test]
    fn concurrent_edits_of_other_fields_both_survive_stamped_with_the_later() {
        let store = StoreId(uuid::Uuid::from_u128(3));
        let mut till = CatalogDoc::create(store, ActorId::random()).unwrap();
        till.upsert_product(&product(store, "Teh", 5000, 10))
            .unwrap();
        let mut office = CatalogDoc::create(store, ActorId::random()).unwrap();
        office.doc().merge(till.doc()).unwrap();
        // The till renames it at 20; head office, not having seen that, reprices at 30.
        till.upsert_product(&product(store, "Teh 350ml", 5000, 20))
            .unwrap();
        office
            .upsert_product(&product(store, "Teh", 5500, 30))
            .unwrap();
        till.doc().merge(office.doc()).unwrap();
        office.doc().merge(till.doc()).unwrap();
        for side in [&till, &office] {
            let merged = side.product(&product_id(store, "TEH")).unwrap().unwrap();
            assert_eq!(
                (merged.name.as_str(), merged.price, merged.updated_at_ms),
                ("Teh 350ml", 5500, 30)
            );
        }
    }
}
