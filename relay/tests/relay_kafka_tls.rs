//! Kafka over TLS: the relay publishes the outbox to a broker it reaches only through
//! TLS, verifies the broker's certificate against the CA it was given (a relay trusting
//! another CA publishes nothing, and the events wait in the outbox), and once the right
//! CA is configured every event arrives exactly once. The broker is tansu behind a TLS
//! terminator (tansu has no TLS listener of its own) that it advertises, so the
//! metadata round trip and every later connection are TLS too.

mod support;

use std::time::Duration;

use kasir_testkit::metric;
use rdkafka::consumer::{BaseConsumer, Consumer};
use support::{
    KafkaOptions, RelayProc, Tansu, Till, kafka_events_from, pg_outbox_pending, pg_sales, runtime,
    wait_for,
};

const SKUS: [(&str, &str, u32); 2] = [
    ("KOPI", "Kopi Kapal Api 25g", 1_500),
    ("TEH", "Teh Botol Sosro 450ml", 5_000),
];

#[test]
fn relay_kafka_tls_publishes_only_to_a_broker_it_trusts() {
    let rt = runtime();
    let db = support::fresh_database("kafka_tls");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = kasir_testkit::tls::certificates(dir.path());
    let tansu = Tansu::start_tls(&certs);
    let brokers = tansu.brokers();
    let ca = certs.ca.to_string_lossy().into_owned();
    let other_ca = certs.other_ca.to_string_lossy().into_owned();

    // A plain client gets nowhere: the broker is reachable through TLS only.
    let plain: BaseConsumer = KafkaOptions::plain(&brokers)
        .client_config()
        .create()
        .expect("plain consumer");
    assert!(
        plain.fetch_metadata(None, Duration::from_secs(3)).is_err(),
        "a plain-TCP client must not read the TLS-only broker's metadata"
    );

    // First the relay trusts the wrong CA.
    let mut relay = RelayProc::start_with(&db, Some(&brokers), &[("KAFKA_TLS_CA", &other_ca)]);
    let tenant = relay.tenant("Toko TLS");
    let mut till = Till::with_products("Warung TLS", "A1", &SKUS, 50);
    let store = till.store_id();
    let adopted = till.ok(&["join", &relay.adopt_ticket(&tenant, &store)]);
    assert_eq!(adopted["adopted"], true, "{adopted}");
    till.start(&[]);
    let (sale, total) = till.sell(&[("KOPI", 2), ("TEH", 1)]);
    assert_eq!(total, 8_000);
    wait_for(60, "the sale in PostgreSQL", || {
        (pg_sales(&rt, &db) == 1).then_some(())
    });
    wait_for(60, "publishing to fail certificate verification", || {
        (metric(&relay.metrics(), "kasir_relay_publish_failures_total") >= 1.0).then_some(())
    });
    let pending = pg_outbox_pending(&rt, &db).expect("outbox");
    assert!(
        pending >= 1,
        "the events wait in the outbox while the broker is not trusted"
    );

    // The operator gives the relay the broker's CA and restarts it.
    relay.restart_with_env(&[("KAFKA_TLS_CA", &ca)]);
    wait_for(60, "the outbox to drain over TLS", || {
        (pg_outbox_pending(&rt, &db) == Some(0)).then_some(())
    });
    let mut kafka = KafkaOptions::plain(&brokers);
    kafka.tls_ca = Some(certs.ca.clone());
    let events = kafka_events_from(&kafka, "kasir.sales.v1", 1, 30);
    assert_eq!(events.len(), 1, "exactly one sale event: {events:?}");
    assert_eq!(
        events[0]["sale_id"].as_str(),
        Some(sale.as_str()),
        "{}",
        events[0]
    );
    assert_eq!(events[0]["store_id"].as_str(), Some(store.as_str()));
    till.shutdown();
}
