//! The catalog: the store's products, each field last-writer-wins.

use automerge::{ActorId, ObjType, ReadDoc};

use crate::doc::{Doc, DocError, GenesisValue, map_fields};
use crate::ids::{DocId, DocKind, StoreId};
use crate::records::Product;

const PRODUCTS: &str = "products";

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
                decode_product(id, map_fields(am, &obj)?).map(Some)
            }
            _ => Ok(None),
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

fn decode_product(
    id: &str,
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> Result<Product, DocError> {
    // LWW fields hold nested values as JSON text.
    if let Some(serde_json::Value::String(s)) = fields.get("barcodes")
        && let Ok(list) = serde_json::from_str::<serde_json::Value>(s)
    {
        fields.insert("barcodes".into(), list);
    }
    serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| DocError::BadRecord {
        key: id.to_owned(),
        reason: e.to_string(),
    })
}
