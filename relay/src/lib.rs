//! The Kasir cloud relay: the node engine in hub mode, with PostgreSQL storage, the
//! materialiser and the Kafka outbox. Filled by the relay milestone.
