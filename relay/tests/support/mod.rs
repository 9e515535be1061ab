//! Helpers of the relay's integration tests; each test file says `mod support;`.
//!
//! Processes and services come from the workspace's test kit (`kasir-testkit`): relay
//! and till processes, the shared PostgreSQL cluster with a fresh database per test,
//! private clusters, the tansu broker, and PostgreSQL-vs-till totals. Here is only what
//! needs the relay's own Kafka client: reading the events back.
//!
//! The services come from `scripts/services install`. A missing one fails the test
//! loudly; nothing is skipped.
// Not every test file uses every helper.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

pub use kasir_relay::publisher::KafkaOptions;
pub use kasir_testkit::pg::{fresh_database, postgres, private_postgres};
pub use kasir_testkit::process::{kasir_bin, relay_bin};
pub use kasir_testkit::tansu::{Tansu, tansu_binary};
pub use kasir_testkit::totals::{
    Totals, compare, pg_event_counts, pg_outbox_pending, pg_sales, pg_totals, till_totals,
    wait_outbox_drained,
};
pub use kasir_testkit::{RelayProc, Till, free_port, runtime, wait_for};
use serde_json::Value;

/// Every message on `topic` from the beginning (assigned partitions, no group join):
/// (messages read, distinct `event_id`s). Reads until `expect` distinct ids were seen
/// and the topic has been quiet for a second, or `secs` pass.
pub fn kafka_event_ids(
    brokers: &str,
    topic: &str,
    expect: usize,
    secs: u64,
) -> (usize, HashSet<String>) {
    let events = kafka_events(brokers, topic, expect, secs);
    let ids = events
        .iter()
        .map(|v| v["event_id"].as_str().expect("event_id").to_owned())
        .collect();
    (events.len(), ids)
}

/// Every message on `topic` from the beginning, as JSON (see [`kafka_event_ids`]).
pub fn kafka_events(brokers: &str, topic: &str, expect: usize, secs: u64) -> Vec<Value> {
    kafka_events_from(&KafkaOptions::plain(brokers), topic, expect, secs)
}

/// [`kafka_events`] from a cluster the relay's own [`KafkaOptions`] describe (TLS and
/// all), so the reader connects exactly as the publisher does.
pub fn kafka_events_from(
    kafka: &KafkaOptions,
    topic: &str,
    expect: usize,
    secs: u64,
) -> Vec<Value> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("kasir-test-{}", free_port()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut events = Vec::new();
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                quiet_since = Instant::now();
                let v: Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("event JSON");
                let id = v["event_id"].as_str().expect("event_id").to_owned();
                let store = v["store_id"].as_str().expect("store_id");
                assert_eq!(m.key(), Some(store.as_bytes()), "key = store id");
                ids.insert(id);
                events.push(v);
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {
                if ids.len() >= expect && quiet_since.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
        }
    }
    events
}

/// (sale events, Σ totals) on the sales topic per store id, each sale counted once
/// however often it was delivered (see [`kafka_events`]).
pub fn kafka_sales_per_store(
    brokers: &str,
    expect: usize,
    secs: u64,
) -> std::collections::BTreeMap<String, (i64, i64)> {
    let mut seen = HashSet::new();
    let mut out: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for v in kafka_events(brokers, kasir_relay::materialise::TOPIC_SALES, expect, secs) {
        if v["type"] != "sale" || !seen.insert(v["sale_id"].to_string()) {
            continue;
        }
        let e = out
            .entry(v["store_id"].as_str().unwrap_or_default().to_owned())
            .or_default();
        e.0 += 1;
        e.1 += v["total"].as_i64().unwrap_or(0);
    }
    out
}

/// Runs statements on the relay's database (rows a till's sync would have written).
pub fn sql(rt: &tokio::runtime::Runtime, db: &str, statements: &[String]) {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("pg");
        for s in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        pool.close().await;
    });
}

/// A head-office token of `tenant` with `role` (`kasir-relay token`).
/// A new store of `tenant` created at the relay (`kasir-relay store create`), and an
/// empty till joined to it with the store's ticket: `(store id, till)`.
pub fn store_with_till(relay: &RelayProc, tenant: &str, name: &str) -> (String, Till) {
    let created = relay.cli(&["store", "create", "--tenant", tenant, "--name", name]);
    let store = created["store_id"].as_str().expect("store_id").to_owned();
    let till = Till::empty();
    till.ok(&["join", created["ticket"].as_str().expect("ticket")]);
    (store, till)
}

pub fn token(relay: &RelayProc, tenant: &str, role: &str) -> String {
    relay.cli(&["token", "--tenant", tenant, "--role", role])["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// A request to the relay's HTTP API with `token`: (status, JSON body or null).
pub fn api(
    relay: &RelayProc,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", relay.http_url());
    let auth = format!("Bearer {token}");
    let sent = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        ("PUT", Some(b)) => agent.put(&url).header("Authorization", &auth).send_json(b),
        ("POST", b) => agent
            .post(&url)
            .header("Authorization", &auth)
            .send_json(b.cloned().unwrap_or_else(|| serde_json::json!({}))),
        _ => panic!("api: {method} {path} is not a request these tests make"),
    };
    let mut r = sent.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        r.status().as_u16(),
        r.body_mut().read_json().unwrap_or(Value::Null),
    )
}
