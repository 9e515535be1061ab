//! The pipelined publisher: several batches in flight at once still publish every
//! outbox row exactly once when the broker is up, in claim order per store, and a
//! broker that stops answering mid-drain leaves every unacknowledged row unpublished
//! (rolled back), to be sent again once it is back — nothing lost.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use kasir_relay::publisher::{self, KafkaOptions};
use support::{Tansu, kafka_events, runtime};
use uuid::Uuid;

const ROWS: usize = 7_500; // three full batches and a short one

/// Fills the outbox with `n` rows for two stores, each payload numbered per store.
async fn fill(pool: &sqlx::PgPool, n: usize, from: usize) {
    let tenant = Uuid::from_u128(1);
    let stores = [Uuid::from_u128(10), Uuid::from_u128(11)];
    let mut event = Vec::new();
    let mut store = Vec::new();
    let mut payload = Vec::new();
    for i in from..from + n {
        let s = stores[i % 2];
        let id = Uuid::now_v7();
        event.push(id);
        store.push(s);
        payload.push(
            serde_json::json!({"event_id": id.to_string(), "store_id": s.to_string(), "n": i})
                .to_string(),
        );
    }
    sqlx::query(
        "INSERT INTO outbox (event_id, tenant_id, store_id, topic, payload)
         SELECT u.e, $1, u.s, 'kasir.sales.v1', u.p::json
         FROM UNNEST($2::uuid[], $3::uuid[], $4::text[]) WITH ORDINALITY AS u(e, s, p, o)
         ORDER BY u.o",
    )
    .bind(tenant)
    .bind(&event)
    .bind(&store)
    .bind(&payload)
    .execute(pool)
    .await
    .expect("fill the outbox");
}

async fn unpublished(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[test]
fn relay_outbox_pipeline_publishes_every_row_once_and_loses_none_when_the_broker_stalls() {
    let rt = runtime();
    let db = support::fresh_database("outbox_pipeline");
    let mut tansu = Tansu::start();
    let pool = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.expect("pg");
        kasir_relay::db::migrate(&pool).await.expect("migrate");
        pool
    });
    let producer = publisher::producer(&KafkaOptions::plain(tansu.brokers())).expect("producer");

    // Broker up: everything once, batch after batch with three in flight.
    rt.block_on(fill(&pool, ROWS, 0));
    let mut sizes = Vec::new();
    let sent = rt
        .block_on(publisher::drain(&pool, &producer, publisher::DEPTH, |n| {
            sizes.push(n)
        }))
        .expect("drain");
    assert_eq!(sent, ROWS);
    assert_eq!(
        sizes,
        vec![2_000, 2_000, 2_000, 1_500],
        "batches settle in claim order"
    );
    assert_eq!(rt.block_on(unpublished(&pool)), 0);
    let events = kafka_events(&tansu.brokers(), "kasir.sales.v1", ROWS, 60);
    assert_eq!(events.len(), ROWS, "each row exactly once");
    // Per store (the message key), the numbering arrives in order.
    let mut last: HashMap<String, i64> = HashMap::new();
    for e in &events {
        let store = e["store_id"].as_str().expect("store").to_owned();
        let n = e["n"].as_i64().expect("n");
        if let Some(prev) = last.insert(store.clone(), n) {
            assert!(n > prev, "store {store}: {n} after {prev}");
        }
    }

    // The broker stalls with batches in flight: the drain fails (deliveries time out)
    // and no row it could not confirm is marked published.
    rt.block_on(fill(&pool, ROWS, ROWS));
    tansu.pause();
    let stalled = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            publisher::drain(&pool, &producer, publisher::DEPTH, |_| {}),
        )
        .await
    });
    assert!(
        matches!(stalled, Ok(Err(_))),
        "a stalled broker fails the drain: {stalled:?}"
    );
    assert_eq!(
        rt.block_on(unpublished(&pool)),
        ROWS as i64,
        "nothing unconfirmed is marked published"
    );

    // Back: the next drain publishes the rest; every event is on the topic at least once.
    tansu.resume();
    let producer = publisher::producer(&KafkaOptions::plain(tansu.brokers())).expect("producer");
    let sent = rt
        .block_on(publisher::drain(&pool, &producer, publisher::DEPTH, |_| {}))
        .expect("drain after the stall");
    assert_eq!(sent, ROWS);
    assert_eq!(rt.block_on(unpublished(&pool)), 0);
    let events = kafka_events(&tansu.brokers(), "kasir.sales.v1", 2 * ROWS, 60);
    let distinct: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id"))
        .collect();
    assert_eq!(distinct.len(), 2 * ROWS, "every event, at least once");
}
