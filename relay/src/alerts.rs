//! Alerts that reach people (the Notification Service): the relay looks at the
//! materialised tables, raises what an owner must hear about, and delivers each alert
//! to the tenant's webhooks and to Kafka (`kasir.alerts.v1`).
//!
//! | kind | raised when |
//! |---|---|
//! | `oversold` | a SKU's stock is below zero |
//! | `low_stock` | a product on sale is below the minimum set for it (on a till or at head office) |
//! | `void_rate` | today's voids and refunds are at least 3 and above twice the store's 30-day rate (and above 5%) |
//! | `outbox_backlog` | events wait for Kafka longer than ten minutes (only where Kafka is configured) |
//! | `till_silent` | a till has not synced for [`AlertOptions::silent`] (six hours by default) |
//!
//! Who owns what: the watcher task ([`watch`]) runs on every instance; an alert's id is
//! derived from its kind, store, subject and business day, so instances looking at once
//! raise it once (`ON CONFLICT DO NOTHING`), and a condition that holds all day is one
//! alert that day. Raising an alert writes its row, its outbox row (the publisher sends
//! it to Kafka) and a delivery row per webhook of the tenant in one transaction. The
//! sender task ([`deliver`]) leases due deliveries (`FOR UPDATE SKIP LOCKED`, so
//! instances share them), POSTs the alert's JSON with `X-Kasir-Signature: sha256=<hex
//! HMAC-SHA256 of the body with the webhook's secret>` and `X-Kasir-Event: <event_id>`,
//! and marks it delivered on a 2xx; otherwise it retries with a doubling wait (one
//! second, at most ten minutes). Delivery is at least once; receivers dedupe on
//! `event_id`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The Kafka topic of alerts.
pub const TOPIC: &str = "kasir.alerts.v1";

/// How an alert task runs.
#[derive(Debug, Clone, Copy)]
pub struct AlertOptions {
    /// How often the tables are looked at.
    pub every: Duration,
    /// Whether a Kafka publisher runs (an outbox backlog is news only then).
    pub kafka: bool,
    /// How long a till may go without syncing before it is news.
    pub silent: Duration,
}

impl Default for AlertOptions {
    fn default() -> AlertOptions {
        AlertOptions {
            every: Duration::from_secs(60),
            kafka: false,
            silent: Duration::from_secs(6 * 3600),
        }
    }
}

/// A condition found in the tables.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Found {
    tenant_id: Uuid,
    store_id: Uuid,
    kind: String,
    subject: String,
    message: String,
    value: f64,
}

/// The id of the alert for `found` on `day`: the same condition on the same day is the
/// same alert, whichever instance sees it.
fn alert_id(kind: &str, store: Uuid, subject: &str, day: &str) -> Uuid {
    let h = blake3::hash(format!("alert|{kind}|{store}|{subject}|{day}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.as_bytes()[..16]);
    uuid::Builder::from_custom_bytes(id).into_uuid()
}

/// The conditions true now, across every tenant (the relay's own role).
async fn conditions(
    pool: &PgPool,
    opts: AlertOptions,
    today: chrono::NaiveDate,
) -> sqlx::Result<Vec<Found>> {
    let mut found: Vec<Found> = sqlx::query_as(
        "SELECT l.tenant_id, l.store_id,
                CASE WHEN l.on_hand < 0 THEN 'oversold' ELSE 'low_stock' END AS kind,
                l.sku AS subject,
                -- Quantities as a shop writes them: no trailing zeros, a decimal comma.
                CASE WHEN l.on_hand < 0
                     THEN COALESCE(p.name, l.sku) || ' terjual melebihi stok: '
                          || replace(trim_scale(l.on_hand)::text, '.', ',')
                     ELSE COALESCE(p.name, l.sku) || ' tinggal '
                          || replace(trim_scale(l.on_hand)::text, '.', ',')
                          || ' (minimum ' || replace(trim_scale(p.min_stock)::text, '.', ',')
                          || ')' END AS message,
                l.on_hand::float8 AS value
           FROM stock_levels l
           LEFT JOIN LATERAL (SELECT name, min_stock, active FROM products p
                               WHERE p.store_id = l.store_id AND p.sku = l.sku
                               ORDER BY p.updated_at_ms DESC LIMIT 1) p ON true
          WHERE l.on_hand < 0
             OR (p.min_stock IS NOT NULL AND l.on_hand < p.min_stock AND p.active)",
    )
    .fetch_all(pool)
    .await?;
    let rates: Vec<Found> = sqlx::query_as(
        "WITH day AS (
            SELECT tenant_id, store_id, count(*) AS sales,
                   count(*) FILTER (WHERE status <> 'completed') AS undone
              FROM sales WHERE business_date = $1 GROUP BY tenant_id, store_id),
         month AS (
            SELECT store_id, count(*) AS sales,
                   count(*) FILTER (WHERE status <> 'completed') AS undone
              FROM sales WHERE business_date BETWEEN $1 - 30 AND $1 - 1 GROUP BY store_id)
         SELECT d.tenant_id, d.store_id, 'void_rate' AS kind, '' AS subject,
                d.undone || ' dari ' || d.sales || ' transaksi hari ini dibatalkan atau diretur'
                    AS message,
                (d.undone::float8 / d.sales) AS value
           FROM day d LEFT JOIN month m ON m.store_id = d.store_id
          WHERE d.undone >= 3
            AND d.undone::float8 / d.sales > 0.05
            AND d.undone::float8 / d.sales
                > 2 * COALESCE(m.undone::float8 / NULLIF(m.sales, 0), 0)",
    )
    .bind(today)
    .fetch_all(pool)
    .await?;
    found.extend(rates);
    let silent: Vec<Found> = sqlx::query_as(
        "SELECT tenant_id, store_id, 'till_silent' AS kind, device_id AS subject,
                'Kasir ' || till_code || ' belum sinkron sejak '
                    || to_char(last_seen AT TIME ZONE 'Asia/Jakarta', 'DD-MM HH24:MI') || ' WIB'
                    AS message,
                extract(epoch FROM clock_timestamp() - last_seen)::float8 / 3600 AS value
           FROM till_seen
          WHERE NOT connected AND role <> 'relay'
            AND last_seen < clock_timestamp() - make_interval(secs => $1)",
    )
    .bind(opts.silent.as_secs_f64())
    .fetch_all(pool)
    .await?;
    found.extend(silent);
    if opts.kafka {
        let backlog: Vec<Found> = sqlx::query_as(
            "SELECT tenant_id, store_id, 'outbox_backlog' AS kind, '' AS subject,
                    count(*) || ' peristiwa menunggu Kafka' AS message,
                    count(*)::float8 AS value
               FROM outbox
              WHERE published_at IS NULL AND created_at < clock_timestamp() - interval '10 minutes'
                AND topic <> $1
              GROUP BY tenant_id, store_id",
        )
        .bind(TOPIC)
        .fetch_all(pool)
        .await?;
        found.extend(backlog);
    }
    Ok(found)
}

/// Looks once; raises what is new. Returns how many alerts were raised.
pub async fn look_once(pool: &PgPool, opts: AlertOptions) -> sqlx::Result<usize> {
    // Business days are WIB's (as the dashboard's "today").
    let today = (Utc::now() + TimeDelta::hours(7)).date_naive();
    let found = conditions(pool, opts, today).await?;
    let day = today.to_string();
    let mut raised = 0;
    for f in found {
        let id = alert_id(&f.kind, f.store_id, &f.subject, &day);
        let payload = json!({
            "event_id": id,
            "type": "alert",
            "kind": f.kind,
            "tenant_id": f.tenant_id,
            "store_id": f.store_id,
            "subject": f.subject,
            "message": f.message,
            "value": f.value,
            "business_date": day,
            "raised_at": Utc::now().to_rfc3339(),
        })
        .to_string();
        let mut tx = pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO alerts (alert_id, tenant_id, store_id, kind, subject, message, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7::json) ON CONFLICT (alert_id) DO NOTHING",
        )
        .bind(id)
        .bind(f.tenant_id)
        .bind(f.store_id)
        .bind(&f.kind)
        .bind(&f.subject)
        .bind(&f.message)
        .bind(&payload)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO outbox (event_id, tenant_id, store_id, topic, payload)
             VALUES ($1, $2, $3, $4, $5::json) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(id)
        .bind(f.tenant_id)
        .bind(f.store_id)
        .bind(TOPIC)
        .bind(&payload)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (alert_id, webhook_id)
             SELECT $1, webhook_id FROM webhooks WHERE tenant_id = $2",
        )
        .bind(id)
        .bind(f.tenant_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(kind = %f.kind, store = %f.store_id, subject = %f.subject, "alert raised");
        raised += 1;
    }
    Ok(raised)
}

/// Looks every `opts.every` until `cancel` fires.
pub async fn watch(pool: PgPool, opts: AlertOptions, cancel: CancellationToken) {
    loop {
        if let Err(e) = look_once(&pool, opts).await {
            tracing::warn!(error = %e, "looking for alerts failed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(opts.every) => {}
        }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`, as `X-Kasir-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(e) => unreachable!("HMAC keys have no length limit: {e}"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Deliveries leased per round.
const LEASE: i64 = 20;

#[derive(Debug, sqlx::FromRow)]
struct Due {
    alert_id: Uuid,
    webhook_id: Uuid,
    url: String,
    secret: String,
    payload: String,
    attempts: i32,
}

/// Sends one webhook POST; `Err` with why it was not delivered.
fn post(agent: &ureq::Agent, due: &Due) -> Result<(), String> {
    let body = due.payload.as_bytes();
    let response = agent
        .post(&due.url)
        .header("Content-Type", "application/json")
        .header("X-Kasir-Event", &due.alert_id.to_string())
        .header("X-Kasir-Signature", &signature(due.secret.as_bytes(), body))
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Delivers what is due once. Returns how many were delivered.
pub async fn deliver_once(pool: &PgPool) -> sqlx::Result<usize> {
    // Leased for a minute: another instance skips them, a crash retries them.
    let due: Vec<Due> = sqlx::query_as(
        "UPDATE webhook_deliveries d SET next_at = clock_timestamp() + interval '60 seconds',
                attempts = d.attempts + 1
           FROM webhooks w, alerts a
          WHERE (d.alert_id, d.webhook_id) IN (
                  SELECT alert_id, webhook_id FROM webhook_deliveries
                   WHERE delivered_at IS NULL AND next_at <= clock_timestamp()
                   ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            AND w.webhook_id = d.webhook_id AND a.alert_id = d.alert_id
         RETURNING d.alert_id, d.webhook_id, w.url, w.secret, a.payload::text AS payload,
                   d.attempts",
    )
    .bind(LEASE)
    .fetch_all(pool)
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let sent = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        due.into_iter()
            .map(|d| {
                let outcome = post(&agent, &d);
                (d, outcome)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut delivered = 0;
    for (d, outcome) in sent {
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET delivered_at = clock_timestamp(), last_error = NULL
                      WHERE alert_id = $1 AND webhook_id = $2",
                )
                .bind(d.alert_id)
                .bind(d.webhook_id)
                .execute(pool)
                .await?;
                delivered += 1;
            }
            Err(why) => {
                tracing::info!(webhook = %d.webhook_id, alert = %d.alert_id, attempt = d.attempts, error = %why, "webhook not delivered; retrying");
                sqlx::query(
                    "UPDATE webhook_deliveries
                        SET next_at = clock_timestamp()
                                      + least(interval '10 minutes', interval '1 second' * power(2, $3 - 1)),
                            last_error = $4
                      WHERE alert_id = $1 AND webhook_id = $2",
                )
                .bind(d.alert_id)
                .bind(d.webhook_id)
                .bind(d.attempts.clamp(1, 20))
                .bind(why)
                .execute(pool)
                .await?;
            }
        }
    }
    Ok(delivered)
}

/// Delivers webhooks until `cancel` fires, looking every half second.
pub async fn deliver(pool: PgPool, cancel: CancellationToken) {
    loop {
        if let Err(e) = deliver_once(&pool).await {
            tracing::warn!(error = %e, "webhook delivery round failed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Registers a webhook for `tenant`; its id.
pub async fn add_webhook(
    pool: &PgPool,
    tenant: Uuid,
    url: &str,
    secret: &str,
) -> Result<Uuid, WebhookError> {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
        return Err(WebhookError::BadUrl(url.to_owned()));
    }
    if secret.len() < 16 {
        return Err(WebhookError::WeakSecret);
    }
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO webhooks (webhook_id, tenant_id, url, secret)
         SELECT $1, tenant_id, $3, $4 FROM tenants WHERE tenant_id = $2",
    )
    .bind(id)
    .bind(tenant)
    .bind(url)
    .bind(secret)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(WebhookError::NoTenant(tenant));
    }
    Ok(id)
}

/// Why a webhook was not added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Not an http(s) URL.
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// A secret too short to sign with.
    #[error("a webhook secret has at least 16 characters")]
    WeakSecret,
    /// No such tenant.
    #[error("no tenant {0}")]
    NoTenant(Uuid),
    /// PostgreSQL.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_one_per_kind_store_subject_and_day() {
        let store = Uuid::from_u128(9);
        let a = alert_id("low_stock", store, "KOPI", "2026-12-02");
        assert_eq!(a, alert_id("low_stock", store, "KOPI", "2026-12-02"));
        assert_ne!(a, alert_id("low_stock", store, "KOPI", "2026-12-03"));
        assert_ne!(a, alert_id("oversold", store, "KOPI", "2026-12-02"));
        assert_ne!(a, alert_id("low_stock", store, "TEH", "2026-12-02"));
    }

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
