//! The Kafka publisher: drains the outbox with an idempotent producer.
//!
//! Who owns what: one task per relay instance owns the producer. Each batch claims up to
//! [`BATCH`] unpublished rows with `FOR UPDATE SKIP LOCKED` (so instances share the work
//! and never publish a row at the same time), produces them all (`acks=all`, idempotent),
//! waits for every delivery report, and marks the rows published in the same
//! transaction. Up to [`DEPTH`] batches are in flight at once (the next is claimed and
//! produced while the oldest waits for its acks), settled in the order claimed. A broker outage makes the round fail and roll back: the rows stay
//! unpublished and the next round retries them, with backoff. Sync never waits for it.
//!
//! Delivery is at least once: a crash between the broker's ack and the commit
//! re-publishes those rows; consumers dedupe on `event_id`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics::RelayMetrics;

/// Rows claimed per round.
pub const BATCH: i64 = 2000;

/// A publisher failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The producer could not be created (bad configuration).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// PostgreSQL.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A delivery failed or timed out.
    #[error("delivery: {0}")]
    Delivery(String),
}

/// How the relay reaches Kafka: the brokers, TLS, and any other librdkafka setting.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct KafkaOptions {
    /// Bootstrap brokers, `host:port[,host:port]`.
    pub brokers: String,
    /// A CA certificate (PEM) the brokers' certificates must chain to; turns TLS on
    /// (`security.protocol=ssl`, host names verified).
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for brokers that require mutual TLS.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Further librdkafka settings (`sasl.mechanism`, `sasl.username`, …), applied last.
    pub extra: Vec<(String, String)>,
}

impl KafkaOptions {
    /// Plain TCP to `brokers`, nothing else set.
    pub fn plain(brokers: impl Into<String>) -> KafkaOptions {
        KafkaOptions {
            brokers: brokers.into(),
            ..KafkaOptions::default()
        }
    }

    /// The librdkafka client configuration these options describe (shared by the
    /// producer and anything else that talks to the same cluster).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        if let Some(ca) = &self.tls_ca {
            config
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", ca.to_string_lossy())
                .set("ssl.endpoint.identification.algorithm", "https");
        }
        if let Some(cert) = &self.tls_cert {
            config.set("ssl.certificate.location", cert.to_string_lossy());
        }
        if let Some(key) = &self.tls_key {
            config.set("ssl.key.location", key.to_string_lossy());
        }
        for (k, v) in &self.extra {
            config.set(k, v);
        }
        config
    }
}

/// An idempotent producer for the cluster `options` describe.
pub fn producer(options: &KafkaOptions) -> Result<FutureProducer, PublishError> {
    let mut config = options.client_config();
    // Delivery settings come after the operator's `extra`: at-least-once with
    // idempotence is what the outbox's "marked published only after every ack" relies on.
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "15000");
    if !options.extra.iter().any(|(k, _)| k == "compression.type") {
        config.set("compression.type", "lz4");
    }
    Ok(config.create()?)
}

/// Batches in flight at once in [`drain`]: while one waits for its delivery reports,
/// the next is claimed and produced, so the producer's pipeline never runs dry.
pub const DEPTH: usize = 3;

/// A claimed batch: its rows locked by an open transaction, its records handed to the
/// producer, their delivery reports not yet awaited.
struct InFlight {
    tx: Transaction<'static, Postgres>,
    ids: Vec<i64>,
    deliveries: Vec<DeliveryFuture>,
}

/// Claims up to [`BATCH`] unpublished rows not claimed by anyone else (`SKIP LOCKED`:
/// another instance, or this one's batches still in flight) and produces them.
async fn claim(pool: &PgPool, producer: &FutureProducer) -> Result<Option<InFlight>, PublishError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, store_id, topic, payload::text AS payload FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let store: Uuid = row.try_get("store_id")?;
        let topic: String = row.try_get("topic")?;
        let payload: String = row.try_get("payload")?;
        let key = store.to_string();
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| PublishError::Delivery(e.to_string()))?;
        deliveries.push(delivery);
        ids.push(id);
    }
    Ok(Some(InFlight {
        tx,
        ids,
        deliveries,
    }))
}

/// Waits for every delivery report of `batch`, then marks its rows published and
/// commits. Any failure drops the transaction: the rows stay unpublished.
async fn settle(batch: InFlight) -> Result<usize, PublishError> {
    let InFlight {
        mut tx,
        ids,
        deliveries,
    } = batch;
    for d in deliveries {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(PublishError::Delivery(e.to_string())),
            Err(_) => return Err(PublishError::Delivery("producer dropped a delivery".into())),
        }
    }
    sqlx::query("UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len())
}

/// Publishes one batch and waits for it. Returns how many rows were published (0:
/// nothing to do). The one-batch-at-a-time baseline of [`drain`].
pub async fn drain_once(pool: &PgPool, producer: &FutureProducer) -> Result<usize, PublishError> {
    match claim(pool, producer).await? {
        Some(batch) => settle(batch).await,
        None => Ok(0),
    }
}

/// Publishes until the outbox is empty, with up to `depth` batches in flight: the next
/// batch is claimed and produced while the oldest waits for its acks. Batches settle in
/// the order they were claimed; `on_batch` hears each one's size. On an error the
/// batches still in flight roll back (their rows stay unpublished; what the broker
/// already has is delivered again later: at least once, consumers dedupe on
/// `event_id`). Returns how many rows were published.
pub async fn drain(
    pool: &PgPool,
    producer: &FutureProducer,
    depth: usize,
    mut on_batch: impl FnMut(usize),
) -> Result<usize, PublishError> {
    let mut in_flight = VecDeque::with_capacity(depth);
    let mut total = 0;
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < depth.max(1) {
            match claim(pool, producer).await? {
                Some(batch) => {
                    // A short batch means the outbox is empty for now.
                    exhausted = (batch.ids.len() as i64) < BATCH;
                    in_flight.push_back(batch);
                }
                None => exhausted = true,
            }
        }
        let Some(batch) = in_flight.pop_front() else {
            return Ok(total);
        };
        let n = settle(batch).await?;
        on_batch(n);
        total += n;
    }
}

/// Runs until cancelled: drains continuously while there is work, polls every 200 ms
/// when idle, backs off up to 10 s while the broker or database is down. A producer that
/// hit a fatal error (the idempotence state is lost) is replaced by a fresh one.
pub async fn run(
    pool: PgPool,
    kafka: KafkaOptions,
    mut producer: FutureProducer,
    metrics: RelayMetrics,
    cancel: CancellationToken,
) {
    use rdkafka::producer::Producer;
    let mut backoff = Duration::from_millis(250);
    loop {
        if let Some((code, reason)) = producer.client().fatal_error() {
            tracing::warn!(?code, %reason, "the Kafka producer failed fatally; starting a new one");
            match self::producer(&kafka) {
                Ok(p) => producer = p,
                Err(e) => tracing::warn!(error = %e, "cannot create a Kafka producer"),
            }
        }
        let drained = drain(&pool, &producer, DEPTH, |n| {
            metrics.events_published.inc_by(n as u64);
            metrics
                .publish_last_ok
                .set(kasir_sync::now_ms() as f64 / 1e3);
        })
        .await;
        let wait = match drained {
            Ok(_) => {
                backoff = Duration::from_millis(250);
                Duration::from_millis(200)
            }
            Err(e) => {
                metrics.publish_failures.inc();
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "publishing the outbox failed");
                let w = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                w
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
