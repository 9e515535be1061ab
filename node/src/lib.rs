//! The Kasir till engine.
//!
//! - [`node::Node`]: the embedding API (open a data directory, add products, sell, query).
//! - [`storage`]: SQLite layout of document chunks and read tables; durability rules.
//! - [`tables`]: the read tables (products with full-text search, stock, sales).
//! - [`import`]: CSV/XLSX product import.
//! - [`http`]: the HTTP API of `kasir run`; [`daemon`]: the daemon and its discovery file.
//! - [`print`]: receipts to printers (ESC/POS via `kasir-devices`) and the print queue.
//! - [`ml`]: product recognition (`kasir-ml`): enrolment, recognition, cashier feedback.
//!
//! **Architecture Invariant:** a write is acknowledged only after its SQLite transaction
//! (document chunk + read-table rows) has committed with `synchronous=FULL`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod daemon;
pub mod error;
pub mod http;
pub mod identity;
pub mod import;
pub mod membership;
pub mod ml;
pub mod node;
pub mod print;
pub mod profile;
pub mod replica;
pub mod storage;
pub mod sync;
pub mod tables;

pub use error::NodeError;
pub use node::Node;
