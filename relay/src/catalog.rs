//! Head office changes the catalog: a product's name, price, cost, minimum stock or
//! barcode set from the API (`PUT /v1/stores/{store}/products/{sku}`, or every store of
//! the tenant at once), written by the relay into the store's catalog document as a
//! signed author — the relay is a roster member whose role the trust rules let write the
//! catalog — and carried to the tills by sync like any till's edit.
//!
//! **Merge:** an edit writes only the fields it names, and only those that differ
//! (`CatalogDoc::upsert_product` writes field by field), so a price set at head office
//! and a name changed on a till at the same time both survive. When both set the *same*
//! field, Automerge keeps one value on every replica alike (the change whose actor sorts
//! last among the concurrent ones); which one won is visible afterwards as the value
//! itself, on the till and in PostgreSQL alike.
//!
//! This module is the pure part ([`ProductEdit`] → a [`Product`]); `net::Relay` locks the
//! store's replica, writes, persists and tells the store's sync sessions.

use kasir_crdt::records::Product;
use kasir_crdt::{Qty, StoreId};
use serde::{Deserialize, Serialize};

/// What head office sets on a product; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProductEdit {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Selling price in rupiah.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// Purchase cost in rupiah.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i64>,
    /// Stock below which the product counts as low (in its unit, three decimals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_stock: Option<f64>,
    /// A barcode (put first; the product's other barcodes stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// Category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Whether it may be sold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Its promotions (a chain-wide promo from head office); `[]` ends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promos: Option<Vec<kasir_crdt::promo::Promo>>,
}

/// Why an edit cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// A new product needs a name and a price.
    #[error("product {0:?} is not in the catalog: give a name and a price to create it")]
    UnknownSku(String),
    /// A field's value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Largest price or cost taken (a trillion rupiah).
const MAX_RUPIAH: i64 = kasir_crdt::pricing::MAX_AMOUNT;

fn text(field: &str, value: &str, max: usize) -> Result<String, EditError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(EditError::Invalid(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(value.to_owned())
}

fn rupiah(field: &str, value: i64) -> Result<i64, EditError> {
    if !(0..=MAX_RUPIAH).contains(&value) {
        return Err(EditError::Invalid(format!(
            "{field} must be whole rupiah from 0 to {MAX_RUPIAH}"
        )));
    }
    Ok(value)
}

impl ProductEdit {
    /// Whether the edit sets nothing.
    pub fn is_empty(&self) -> bool {
        *self == ProductEdit::default()
    }

    /// `existing` with this edit applied (or a new product of `store` with this `sku`),
    /// stamped `now_ms`. Only named fields change.
    pub fn apply(
        &self,
        store: StoreId,
        sku: &str,
        existing: Option<Product>,
        now_ms: i64,
    ) -> Result<Product, EditError> {
        let sku = text("sku", sku, 64)?;
        let mut product = match existing {
            Some(p) => p,
            None => {
                let (Some(name), Some(price)) = (&self.name, self.price) else {
                    return Err(EditError::UnknownSku(sku));
                };
                Product {
                    id: kasir_crdt::ids::product_id(store, &sku),
                    sku: sku.clone(),
                    name: name.clone(),
                    barcodes: Vec::new(),
                    price,
                    cost: None,
                    category: None,
                    unit: "pcs".into(),
                    tax_code: None,
                    active: true,
                    min_stock: None,
                    updated_at_ms: now_ms,
                    units: Vec::new(),
                    tiers: Vec::new(),
                    promos: Vec::new(),
                }
            }
        };
        if let Some(name) = &self.name {
            product.name = text("name", name, 200)?;
        }
        if let Some(price) = self.price {
            product.price = rupiah("price", price)?;
        }
        if let Some(cost) = self.cost {
            product.cost = Some(rupiah("cost", cost)?);
        }
        if let Some(min) = self.min_stock {
            let milli = (min * 1000.0).round();
            if !min.is_finite() || !(0.0..=1e12).contains(&milli) {
                return Err(EditError::Invalid(format!(
                    "min_stock must be a quantity from 0, not {min}"
                )));
            }
            // Bounded above: the cast is exact.
            product.min_stock = Some(Qty(milli as i64));
        }
        if let Some(code) = &self.barcode {
            let code = text("barcode", code, 64)?;
            product.barcodes.retain(|b| *b != code);
            product.barcodes.insert(0, code);
        }
        if let Some(category) = &self.category {
            product.category = Some(text("category", category, 100)?);
        }
        if let Some(active) = self.active {
            product.active = active;
        }
        if let Some(promos) = &self.promos {
            if promos.len() > 8 {
                return Err(EditError::Invalid("promos: at most 8".into()));
            }
            for p in promos {
                p.check()
                    .map_err(|e| EditError::Invalid(format!("promos: {e}")))?;
            }
            product.promos = promos.clone();
        }
        product.updated_at_ms = now_ms;
        Ok(product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreId {
        StoreId(uuid::Uuid::from_u128(7))
    }

    #[test]
    fn an_edit_changes_only_the_fields_it_names() {
        let created = ProductEdit {
            name: Some("Kopi".into()),
            price: Some(1500),
            ..ProductEdit::default()
        }
        .apply(store(), "KOPI", None, 1)
        .unwrap();
        assert_eq!(created.id, kasir_crdt::ids::product_id(store(), "KOPI"));
        let edited = ProductEdit {
            price: Some(1700),
            min_stock: Some(12.5),
            barcode: Some("8991002101234".into()),
            ..ProductEdit::default()
        }
        .apply(store(), "KOPI", Some(created.clone()), 2)
        .unwrap();
        assert_eq!(edited.name, "Kopi");
        assert_eq!(edited.price, 1700);
        assert_eq!(edited.min_stock, Some(Qty(12_500)));
        assert_eq!(edited.barcodes, vec!["8991002101234".to_owned()]);
        assert_eq!(edited.updated_at_ms, 2);
    }

    #[test]
    fn head_office_sets_and_ends_a_promotion() {
        use kasir_crdt::promo::{Offer, Promo};
        let created = ProductEdit {
            name: Some("Teh".into()),
            price: Some(4000),
            ..ProductEdit::default()
        }
        .apply(store(), "TEH", None, 1)
        .unwrap();
        let promo = Promo {
            offer: Offer::BuyGet { buy: 2, free: 1 },
            from: None,
            until: Some("2026-12-31".parse().unwrap()),
        };
        let on = ProductEdit {
            promos: Some(vec![promo.clone()]),
            ..ProductEdit::default()
        }
        .apply(store(), "TEH", Some(created), 2)
        .unwrap();
        assert_eq!((on.promos.clone(), on.price), (vec![promo], 4000));
        let off = ProductEdit {
            promos: Some(Vec::new()),
            ..ProductEdit::default()
        }
        .apply(store(), "TEH", Some(on.clone()), 3)
        .unwrap();
        assert!(off.promos.is_empty());
        let nonsense = ProductEdit {
            promos: Some(vec![Promo {
                offer: Offer::Bundle { qty: 1, price: 5 },
                from: None,
                until: None,
            }]),
            ..ProductEdit::default()
        }
        .apply(store(), "TEH", Some(on), 4);
        assert!(matches!(nonsense, Err(EditError::Invalid(m)) if m.starts_with("promos")));
    }

    #[test]
    fn bad_edits_are_refused_with_the_field_named() {
        let unknown = ProductEdit {
            price: Some(1),
            ..ProductEdit::default()
        }
        .apply(store(), "X", None, 1);
        assert_eq!(unknown, Err(EditError::UnknownSku("X".into())));
        for (edit, field) in [
            (
                ProductEdit {
                    name: Some("A".into()),
                    price: Some(-1),
                    ..ProductEdit::default()
                },
                "price",
            ),
            (
                ProductEdit {
                    name: Some(" ".into()),
                    price: Some(1),
                    ..ProductEdit::default()
                },
                "name",
            ),
            (
                ProductEdit {
                    name: Some("A".into()),
                    price: Some(1),
                    min_stock: Some(f64::NAN),
                    ..ProductEdit::default()
                },
                "min_stock",
            ),
        ] {
            let Err(EditError::Invalid(why)) = edit.apply(store(), "X", None, 1) else {
                panic!("{edit:?} was taken");
            };
            assert!(why.contains(field), "{why}");
        }
    }
}
