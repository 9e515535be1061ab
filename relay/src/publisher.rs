//! The Kafka publisher: drains the outbox with an idempotent producer.
//!
//! Who owns what: one task per relay instance owns the producer. Each round claims up to
//! [`BATCH`] unpublished rows with `FOR UPDATE SKIP LOCKED` (so instances share the work
//! and never publish a row at the same time), produces them all (`acks=all`, idempotent),
//! waits for every delivery report, and marks the rows published in the same
//! transaction. A broker outage makes the round fail and roll back: the rows stay
//! unpublished and the next round retries them, with backoff. Sync never waits for it.
//!
//! Delivery is at least once: a crash between the broker's ack and the commit
//! re-publishes those rows; consumers dedupe on `event_id`.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgPool, Row};
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

/// An idempotent producer for `brokers` (`host:port[,host:port]`).
pub fn producer(brokers: &str) -> Result<FutureProducer, PublishError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "15000")
        .set("compression.type", "lz4")
        .create()?)
}

/// Publishes one batch. Returns how many rows were published (0: nothing to do).
pub async fn drain_once(pool: &PgPool, producer: &FutureProducer) -> Result<usize, PublishError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, store_id, topic, payload::text AS payload FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut pending = Vec::with_capacity(rows.len());
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
        pending.push(delivery);
        ids.push(id);
    }
    for d in pending {
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

/// Runs until cancelled: drains continuously while there is work, polls every 200 ms
/// when idle, backs off up to 10 s while the broker or database is down. A producer that
/// hit a fatal error (the idempotence state is lost) is replaced by a fresh one.
pub async fn run(
    pool: PgPool,
    brokers: String,
    mut producer: FutureProducer,
    metrics: RelayMetrics,
    cancel: CancellationToken,
) {
    use rdkafka::producer::Producer;
    let mut backoff = Duration::from_millis(250);
    loop {
        if let Some((code, reason)) = producer.client().fatal_error() {
            tracing::warn!(?code, %reason, "the Kafka producer failed fatally; starting a new one");
            match self::producer(&brokers) {
                Ok(p) => producer = p,
                Err(e) => tracing::warn!(error = %e, "cannot create a Kafka producer"),
            }
        }
        let drained = drain_once(&pool, &producer).await;
        if let Ok(n) = drained {
            metrics.events_published.inc_by(n as u64);
            metrics
                .publish_last_ok
                .set(kasir_sync::now_ms() as f64 / 1e3);
        }
        let wait = match drained {
            Ok(n) if n as i64 >= BATCH => Duration::ZERO,
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
