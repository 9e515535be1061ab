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

pub use kasir_testkit::pg::{fresh_database, postgres, private_postgres};
pub use kasir_testkit::process::{kasir_bin, relay_bin};
pub use kasir_testkit::tansu::{Tansu, tansu_binary};
pub use kasir_testkit::totals::{
    Totals, compare, pg_event_counts, pg_sales, pg_totals, till_totals, wait_outbox_drained,
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
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
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
