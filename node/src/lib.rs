//! The Kasir till engine: one data directory's documents in SQLite, the read tables they
//! imply, durable sales, the till's peer network and its HTTP daemon.
//!
//! The embedding API (what the `kasir` command, the daemon, a mobile binding and the
//! tests use):
//! - [`Node`]: open or create a data directory; add products, sell, void, query.
//! - [`api`]: every request and response of the HTTP API, and each operation written
//!   once ([`api::Operation`]) for the daemon and for the `kasir` command's client.
//! - [`SharedNode`]: a node behind its one mutex, shared by the daemon's tasks.
//! - [`daemon`] (`kasir run`), [`http`] (its router), [`lan`] (peer sync, joining,
//!   adopting a relay), [`print`] (receipts to printers), [`ml`] (product recognition),
//!   [`import`] (CSV/XLSX), [`profile`] (the store profile a shop owner sets).
//!
//! Storage (SQLite layout, read tables, the node as a sync replica) is private: nothing
//! outside this crate writes a chunk or a read-table row.
//!
//! **Architecture Invariant:** a write is acknowledged only after its SQLite transaction
//! (document chunk + read-table rows) has committed with `synchronous=FULL`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod backup;
pub mod daemon;
pub mod drafts;
mod error;
pub mod gate;
pub mod http;
pub mod import;
pub mod kasbon;
pub mod lan;
mod membership;
pub mod metrics;
pub mod ml;
mod node;
pub mod people;
pub mod print;
pub mod profile;
pub mod qris;
mod refunds;
mod replica;
pub mod reports;
mod shared;
pub mod shifts;
mod storage;
mod tables;
pub mod ui;
pub mod vault;

pub use error::NodeError;
pub use node::{LOCK_FILE, Node};
pub use shared::SharedNode;
pub use storage::DB_FILE;
#[cfg(feature = "test-utils")]
pub use storage::UNSIGNED_BASELINE;
pub use tables::SaleStatus;
