//! Receipts (struk) and till hardware for Kasir.
//!
//! - [`receipt`]: the layout of a [`kasir_crdt::records::Sale`] as a struk for a given
//!   column count (32 on 58 mm paper, 42 or 48 on 80 mm), printed as plain text.
//! - [`encode`]: the same layout as ESC/POS bytes for a [`encode::PrinterProfile`]
//!   (bold/large text, native or raster QR, cut, cash drawer), and `DLE EOT` status.
//! - [`transport`]: printer URIs (`tcp://`, `file://`, `ble://`) and the transports
//!   behind one [`transport::Transport`] trait, every wait bounded; [`ble`]: Bluetooth LE
//!   printers (chunked, paced GATT writes).
//! - [`barcode`]: EAN/UPC check digits, in-store weighed/priced codes, and the
//!   keyboard-wedge scanner detector.
//!
//! **API Boundary:** everything public here. **Architecture Invariants:** only this
//! crate talks to hardware (printers, scanners, the cash drawer — the node and the UI go
//! through it); layout and encoding are pure (no IO, no clock: times come from the sale)
//! and never panic on a record; every transport call ends, in error if need be, within
//! its [`transport::TransportOptions`] limits.
//!
//! ```
//! use kasir_crdt::money::Qty;
//! use kasir_crdt::records::{Payment, Sale, SaleLine};
//! use kasir_crdt::store::StoreProfile;
//! use kasir_crdt::tax::TaxRule;
//! use kasir_devices::receipt::{render_text, ReceiptOptions};
//!
//! let line = SaleLine {
//!     product_id: "p".into(), sku: "INDOMIE".into(), name: "Indomie Goreng".into(),
//!     qty: Qty::units(3), unit_price: 3_500, discount: 0, tax: 0, line_total: 10_500,
//!     tax_code: None,
//!     unit: None, promo: None,
//! };
//! let sale = Sale {
//!     id: "s".into(), client_id: None, receipt_no: "T1-250612-000001".into(),
//!     till: "t".into(), till_code: "T1".into(), cashier: Some("Ani".into()), user_id: None, approved_by: None,
//!     created_at_ms: 1_749_711_900_000, business_date: "2025-06-12".into(),
//!     lines: vec![line], subtotal: 10_500, service_charge: 0, tax: 0, dpp: 10_500,
//!     dpp_other: 10_500, tax_rule: TaxRule::none(), taxes: vec![], seller: None,
//!     customer_id: None, due_date: None, customer_name: None, rounding: 0, total: 10_500,
//!     payments: vec![Payment { method: "cash".into(), amount: 20_000, reference: None, confirmed_by: None }], change: 9_500,
//! };
//! let text = render_text(&StoreProfile::named("Warung Bu Sri"), &sale, &ReceiptOptions::default())?;
//! assert!(text.contains("12/06/2025 14:05 WIB"));
//! assert!(text.lines().all(|l| l.len() <= 32));
//! # Ok::<(), kasir_devices::receipt::ReceiptError>(())
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod barcode;
pub mod ble;
pub mod encode;
pub mod receipt;
pub mod transport;
