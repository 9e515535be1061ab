//! Alerts that reach people: stock below a product's minimum and oversold SKUs in
//! PostgreSQL make the relay raise alerts, which a webhook receiver (a real HTTP server
//! on loopback) gets once each, signed with HMAC-SHA256 of the body; while the receiver
//! is down, a new alert is retried with backoff and arrives once it is back; Kafka's
//! `kasir.alerts.v1` holds the same events; looking again raises nothing new. A till
//! that has not synced for longer than the limit is an alert too; one syncing now is not.

mod support;

use std::collections::BTreeSet;

use kasir_relay::alerts::signature;
use kasir_testkit::webhook::Receiver;
use serde_json::Value;
use support::{RelayProc, Tansu, kafka_event_ids, runtime, sql, wait_for};
use uuid::Uuid;

const SECRET: &str = "rahasia-webhook-0123";

fn count(rt: &tokio::runtime::Runtime, db: &str, query: &str) -> i64 {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("pg");
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        n
    })
}

/// `(kind, subject)` of each delivery, after checking its signature and event header.
fn checked(receiver: &Receiver) -> Vec<(String, String, String)> {
    receiver
        .received()
        .iter()
        .map(|d| {
            assert_eq!(
                d.header("x-kasir-signature"),
                Some(signature(SECRET.as_bytes(), &d.body).as_str()),
                "a delivery's signature"
            );
            let v: Value = serde_json::from_slice(&d.body).expect("JSON body");
            let id = v["event_id"].as_str().expect("event_id").to_owned();
            assert_eq!(d.header("x-kasir-event"), Some(id.as_str()));
            (
                id,
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn relay_alerts_reach_a_webhook_once_each_through_its_restart_and_kafka() {
    let rt = runtime();
    let db = support::fresh_database("alerts_webhooks");
    let tansu = Tansu::start();
    let relay = RelayProc::start_with(
        &db,
        Some(&tansu.brokers()),
        &[
            ("KASIR_RELAY_ALERT_EVERY_MS", "300"),
            ("KASIR_RELAY_SILENT_S", "60"),
        ],
    );
    let tenant = relay.tenant("PT Maju Bersama");
    let store = relay.cli(&[
        "store",
        "create",
        "--tenant",
        &tenant,
        "--name",
        "Maju Depok",
    ])["store_id"]
        .as_str()
        .expect("store_id")
        .to_owned();
    let mut receiver = Receiver::start(0);
    let port = receiver.port;
    let hook = relay.cli(&[
        "webhook",
        "add",
        "--tenant",
        &tenant,
        "--url",
        &receiver.url(),
        "--secret",
        SECRET,
    ]);
    assert!(hook["webhook_id"].is_string(), "{hook}");

    let product = |sku: &str, min: &str, on_hand: &str| {
        let id = Uuid::now_v7();
        [
            format!(
                "INSERT INTO products (tenant_id, store_id, product_id, sku, name, price, unit, \
                 active, updated_at_ms, min_stock) VALUES ('{tenant}', '{store}', '{id}', \
                 '{sku}', '{sku} 1kg', 5000, 'pcs', true, 1, {min})"
            ),
            format!("INSERT INTO stock_levels VALUES ('{tenant}', '{store}', '{sku}', {on_hand})"),
        ]
    };
    let mut rows = Vec::new();
    rows.extend(product("KOPI", "10", "4"));
    rows.extend(product("TEH", "NULL", "-3"));
    rows.extend(product("BERAS", "5", "20"));
    // A till last seen two hours ago (the limit here is a minute), and one syncing now.
    rows.push(format!(
        "INSERT INTO till_seen (tenant_id, store_id, device_id, till_code, role, last_seen, \
         connected) VALUES ('{tenant}', '{store}', 'senyap', 'T2', 'till', \
         now() - interval '2 hours', false), ('{tenant}', '{store}', 'aktif', 'T1', 'owner', \
         now() - interval '2 hours', true)"
    ));
    sql(&rt, &db, &rows);

    let first = wait_for(30, "three alerts at the webhook", || {
        let got = checked(&receiver);
        (got.len() >= 3).then_some(got)
    });
    let kinds: BTreeSet<(String, String)> = first
        .iter()
        .map(|(_, k, s)| (k.clone(), s.clone()))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            ("low_stock".to_owned(), "KOPI".to_owned()),
            ("oversold".to_owned(), "TEH".to_owned()),
            ("till_silent".to_owned(), "senyap".to_owned()),
        ])
    );

    // The receiver goes down; GULA is oversold meanwhile.
    receiver.stop();
    sql(&rt, &db, &product("GULA", "NULL", "-1"));
    wait_for(30, "a failed delivery of GULA's alert", || {
        (count(
            &rt,
            &db,
            "SELECT count(*) FROM webhook_deliveries d JOIN alerts a USING (alert_id)
              WHERE a.subject = 'GULA' AND d.delivered_at IS NULL AND d.last_error IS NOT NULL",
        ) == 1)
            .then_some(())
    });
    let mut receiver = Receiver::start(port);
    let all = wait_for(60, "GULA's alert after the restart", || {
        let got = checked(&receiver);
        got.iter().any(|(_, _, s)| s == "GULA").then_some(got)
    });
    assert_eq!(all.len(), 1, "only the missed alert comes again: {all:?}");

    // Once each, on Kafka too, and looking again raises nothing new.
    let mut ids: BTreeSet<String> = first.iter().map(|(id, _, _)| id.clone()).collect();
    ids.extend(all.iter().map(|(id, _, _)| id.clone()));
    assert_eq!(ids.len(), 4);
    let (_, on_kafka) = kafka_event_ids(&tansu.brokers(), "kasir.alerts.v1", 4, 60);
    assert_eq!(on_kafka.into_iter().collect::<BTreeSet<_>>(), ids);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(count(&rt, &db, "SELECT count(*) FROM alerts"), 4);
    assert!(checked(&receiver).len() == 1, "nothing delivered twice");
    receiver.stop();
}
