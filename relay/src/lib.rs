//! The Kasir cloud relay: the node engine in hub mode.
//!
//! - [`db`]: the PostgreSQL pool, migrations, identity, tenants, stores and the document
//!   chunk store (keyed by content hash).
//! - [`replica`]: one store's documents in memory, speaking the till's sync protocol.
//! - [`materialise`]: ledger and catalog records into the reporting tables and the outbox,
//!   in the transaction that stores the chunks.
//! - [`net`]: the iroh endpoint: accepts tills of every store it serves, admits joiners.
//! - [`publisher`]: drains the outbox to Kafka.
//! - [`ml`]: answers tills' recognition questions from the tenant's galleries.
//! - [`api`] and [`auth`]: the head-office HTTP API and its JWTs.
//! - [`metrics`]: the process's metrics registry.
//!
//! **Architecture Invariant:** the relay acknowledges a till's changes (answers its sync
//! message) only after the chunk, the materialised rows and the outbox rows committed in
//! one PostgreSQL transaction.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod alerts;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod db;
pub mod materialise;
pub mod metrics;
pub mod ml;
pub mod net;
pub mod office;
pub mod publisher;
pub mod replica;
pub mod tls;
pub mod users;
