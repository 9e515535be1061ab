//! The relay's `/metrics`: one `prometheus_client` registry per process.
//!
//! Who owns what: [`RelayMetrics`] is created by `kasir-relay run` and shared (cheap
//! clones of atomic counters) by the sync endpoint, the recognition answers, the
//! publisher and the API. The series read from PostgreSQL (outbox lag, sales, stores) are
//! queried once per scrape by the API and encoded from that snapshot by a collector.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use kasir_sync::SyncMetrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// What one scrape read from PostgreSQL; `None` when the database did not answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbSnapshot {
    /// Outbox rows not yet published.
    pub outbox_pending: i64,
    /// Age of the oldest unpublished row, seconds (0: none).
    pub outbox_oldest_age_s: f64,
    /// Sales materialised (rows of `sales`).
    pub sales: i64,
    /// Stores served.
    pub stores: i64,
    /// Sales materialised in the last five minutes.
    pub recent_sales: i64,
    /// Median seconds from a till's commit (its clock) to the row in PostgreSQL, over
    /// those sales (0: none): the materialisation lag.
    pub materialise_lag_p50_s: f64,
    /// The longest of those (a till back from a day offline shows here).
    pub materialise_lag_max_s: f64,
    /// Connections in the relay's PostgreSQL pool, in use and idle.
    pub pool_size: i64,
    /// Idle connections in the pool.
    pub pool_idle: i64,
    /// The pool's maximum.
    pub pool_max: i64,
}

/// Encodes the last [`DbSnapshot`] at scrape time.
#[derive(Debug, Default)]
struct DbCollector {
    last: Mutex<Option<DbSnapshot>>,
}

impl Collector for DbCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let last = self.last.lock().ok().and_then(|l| *l);
        let up = ConstGauge::new(i64::from(last.is_some()));
        up.encode(encoder.encode_descriptor(
            "kasir_relay_db_up",
            "Whether PostgreSQL answered this scrape",
            None,
            up.metric_type(),
        )?)?;
        let Some(db) = last else {
            return Ok(());
        };
        let counts = [
            (
                "kasir_relay_outbox_pending",
                "Outbox rows not yet published to Kafka",
                db.outbox_pending,
            ),
            (
                "kasir_relay_stores",
                "Stores served by this relay",
                db.stores,
            ),
        ];
        for (name, help, n) in counts {
            let g = ConstGauge::new(n);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let age = ConstGauge::new(db.outbox_oldest_age_s);
        age.encode(encoder.encode_descriptor(
            "kasir_relay_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox row (0: none)",
            None,
            age.metric_type(),
        )?)?;
        let gauges = [
            (
                "kasir_relay_materialise_lag_p50_seconds",
                "Median seconds from a till's commit to its sale row, sales of the last 5 minutes",
                db.materialise_lag_p50_s,
            ),
            (
                "kasir_relay_materialise_lag_max_seconds",
                "Longest seconds from a till's commit to its sale row, sales of the last 5 minutes",
                db.materialise_lag_max_s,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let pool = [
            (
                "kasir_relay_db_recent_sales",
                "Sales materialised in the last 5 minutes",
                db.recent_sales,
            ),
            (
                "kasir_relay_db_pool_connections",
                "PostgreSQL pool connections open (in use and idle)",
                db.pool_size,
            ),
            (
                "kasir_relay_db_pool_idle",
                "PostgreSQL pool connections idle",
                db.pool_idle,
            ),
            (
                "kasir_relay_db_pool_max",
                "PostgreSQL pool connections at most",
                db.pool_max,
            ),
        ];
        for (name, help, n) in pool {
            let g = ConstGauge::new(n);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let sales = ConstCounter::new(u64::try_from(db.sales).unwrap_or(0));
        sales.encode(encoder.encode_descriptor(
            "kasir_relay_sales_materialised",
            "Sales materialised into PostgreSQL",
            None,
            sales.metric_type(),
        )?)
    }
}

/// Every series of a relay process.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    registry: Arc<Mutex<Registry>>,
    db: Arc<DbCollector>,
    /// The sync sessions' transport counters.
    pub sync: SyncMetrics,
    /// Stores held in memory now.
    pub loaded_stores: Gauge,
    /// Persist transactions committed.
    pub persists: Counter,
    /// Persist transactions that failed (the session ended; the till resends).
    pub persist_errors: Counter,
    /// Sales offered to the materialiser (before dedupe).
    pub sales_offered: Counter,
    /// Chunks merged from other instances.
    pub chunks_polled: Counter,
    /// Documents taken out of memory (closed days nobody synced for a while).
    pub docs_parked: Counter,
    /// Parked documents read back from PostgreSQL.
    pub docs_unparked: Counter,
    /// Recognition questions answered.
    pub ml_answered: Counter,
    /// Recognition questions refused.
    pub ml_refused: Counter,
    /// Events acknowledged by Kafka.
    pub events_published: Counter,
    /// Publish rounds that failed.
    pub publish_failures: Counter,
    /// When a publish round last succeeded (seconds since the epoch; 0: never).
    pub publish_last_ok: Gauge<f64, AtomicU64>,
}

impl Default for RelayMetrics {
    fn default() -> RelayMetrics {
        RelayMetrics::new()
    }
}

impl RelayMetrics {
    /// A registry with every series of the relay.
    pub fn new() -> RelayMetrics {
        let m = RelayMetrics {
            registry: Arc::default(),
            db: Arc::default(),
            sync: SyncMetrics::default(),
            loaded_stores: Gauge::default(),
            persists: Counter::default(),
            persist_errors: Counter::default(),
            sales_offered: Counter::default(),
            chunks_polled: Counter::default(),
            docs_parked: Counter::default(),
            docs_unparked: Counter::default(),
            ml_answered: Counter::default(),
            ml_refused: Counter::default(),
            events_published: Counter::default(),
            publish_failures: Counter::default(),
            publish_last_ok: Gauge::default(),
        };
        {
            let mut guard = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            let r = &mut *guard;
            m.sync.register(r);
            r.register_collector(Box::new(m.db.clone()));
            let relay = r.sub_registry_with_prefix("kasir_relay");
            relay.register(
                "loaded_stores",
                "Stores held in memory",
                m.loaded_stores.clone(),
            );
            relay.register(
                "persists",
                "Persist transactions committed",
                m.persists.clone(),
            );
            relay.register(
                "persist_errors",
                "Persist transactions failed",
                m.persist_errors.clone(),
            );
            relay.register(
                "sales_offered",
                "Sales offered to the materialiser",
                m.sales_offered.clone(),
            );
            relay.register(
                "chunks_polled",
                "Chunks merged from other instances",
                m.chunks_polled.clone(),
            );
            relay.register(
                "docs_parked",
                "Documents taken out of memory (closed days idle for a while)",
                m.docs_parked.clone(),
            );
            relay.register(
                "docs_unparked",
                "Parked documents read back from PostgreSQL",
                m.docs_unparked.clone(),
            );
            relay.register(
                "ml_answered",
                "Recognition questions answered",
                m.ml_answered.clone(),
            );
            relay.register(
                "ml_refused",
                "Recognition questions refused",
                m.ml_refused.clone(),
            );
            relay.register(
                "events_published",
                "Events acknowledged by Kafka",
                m.events_published.clone(),
            );
            relay.register(
                "publish_failures",
                "Publish rounds that failed",
                m.publish_failures.clone(),
            );
            relay.register(
                "publish_last_ok_timestamp_seconds",
                "When a publish round last succeeded (0: never)",
                m.publish_last_ok.clone(),
            );
        }
        m
    }

    /// Registers more series (tests, embedders) in the same registry.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        if let Ok(mut r) = self.registry.lock() {
            f(&mut r);
        }
    }

    /// The text exposition, with PostgreSQL's series as of `db`.
    pub fn render(&self, db: Option<DbSnapshot>) -> String {
        if let Ok(mut last) = self.db.last.lock() {
            *last = db;
        }
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}
