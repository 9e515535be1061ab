//! Kasir's point-of-sale document model on Automerge: a pure state machine.
//!
//! A store is made of three kinds of document (see `ARCHITECTURE.md`):
//! - [`store::StoreDoc`]: profile, device roster, invites;
//! - [`catalog::CatalogDoc`]: products, each field last-writer-wins;
//! - [`ledger::LedgerDoc`]: one per till per business day, append-only records.
//!
//! Stock is never stored: [`stock`] sums every distinct movement over all ledgers.
//! Money is integer rupiah ([`money`]), tax is a rule ([`tax`]), a cart is priced by
//! [`pricing`]. Every document starts from a deterministic genesis change, so replicas
//! created independently still share their top-level objects.
//!
//! **API Boundary:** everything public here. **Architecture Invariant:** no IO, no
//! clocks, no randomness (callers pass ids and times), and no panic on remote input.
//!
//! Two tills edit the catalog offline and converge through the sync protocol:
//!
//! ```
//! use automerge::ActorId;
//! use kasir_crdt::catalog::CatalogDoc;
//! use kasir_crdt::ids::{product_id, StoreId};
//! use kasir_crdt::records::Product;
//! use kasir_crdt::sync::PeerState;
//!
//! let store = StoreId(uuid::Uuid::from_u128(1));
//! let product = |sku: &str, price| Product {
//!     id: product_id(store, sku), sku: sku.into(), name: sku.into(), barcodes: vec![],
//!     price, cost: None, category: None, unit: "pcs".into(), tax_code: None,
//!     active: true, min_stock: None, units: vec![], tiers: vec![], promos: vec![],
//!     updated_at_ms: 1,
//! };
//! let mut a = CatalogDoc::create(store, ActorId::random()).unwrap();
//! let mut b = CatalogDoc::create(store, ActorId::random()).unwrap();
//! a.upsert_product(&product("KOPI", 5_000)).unwrap();
//! b.upsert_product(&product("TEH", 4_000)).unwrap();
//!
//! let (mut at_a, mut at_b) = (PeerState::new(), PeerState::new());
//! loop {
//!     let to_b = a.doc().generate_sync_message(&mut at_a);
//!     let to_a = b.doc().generate_sync_message(&mut at_b);
//!     if to_b.is_none() && to_a.is_none() { break; }
//!     if let Some(m) = to_b { b.doc().receive_sync_message(&mut at_b, &m).unwrap(); }
//!     if let Some(m) = to_a { a.doc().receive_sync_message(&mut at_a, &m).unwrap(); }
//! }
//! assert_eq!(a.products().len(), 2);
//! assert_eq!(a.doc().heads_hash(), b.doc().heads_hash());
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod author;
pub mod catalog;
pub mod doc;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod parallel;
pub mod pricing;
pub mod promo;
mod record_de;
pub mod records;
pub mod refund;
pub mod stock;
pub mod store;
pub mod sync;
pub mod tax;

pub use automerge::ActorId;
pub use doc::{Doc, DocError};
pub use ids::{BusinessDate, DeviceId, DocId, DocKind, StoreId};
pub use money::{Qty, Rupiah};
