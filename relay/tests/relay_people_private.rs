//! PIN hashes stay with the people's records (contract, "People and permissions"): a
//! store with users, logins, an approved refund and a shift syncs through the relay,
//! and neither the relay's materialised PostgreSQL tables nor its Kafka events hold a
//! PIN hash (or a PIN). The relay's document store (`docs`, `doc_chunks`) is the store's
//! CRDT documents in Automerge's binary form, which it forwards to tills that cannot
//! reach each other; it is not materialised and is left out of the search, and said so.

mod support;

use serde_json::json;
use support::{
    RelayProc, Tansu, Till, kafka_events, pg_sales, postgres, runtime, wait_for,
    wait_outbox_drained,
};

const PINS: [&str; 3] = ["97531864", "4321", "1111"];

/// `s` as the lowercase hex PostgreSQL prints a `bytea` in.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn relay_people_private_pin_hashes_never_reach_postgres_tables_or_kafka() {
    let rt = runtime();
    let db = support::fresh_database("people_private");
    let tansu = Tansu::start();
    let relay = RelayProc::start(&db, Some(&tansu.brokers()));
    let tenant = relay.tenant("Toko Rahasia");

    let mut a = Till::with_owner("Toko Rahasia", "R1", "Bu Rina", PINS[0]);
    a.add_user("Sari", "supervisor", PINS[1]);
    a.add_user("Ani", "cashier", PINS[2]);
    a.ok(&[
        "product", "add", "--sku", "KOPI", "--name", "Kopi", "--price", "5000", "--stock", "20",
    ]);
    let ticket = relay.adopt_ticket(&tenant, &a.store_id());
    assert_eq!(a.ok(&["join", &ticket])["adopted"], true);
    a.start(&[]);

    // A day's work with people in it: a login, a shift, a sale, an approved refund.
    let ani = a.login("Ani", PINS[2]);
    let (status, v) = a.post_as("/v1/shifts/open", &json!({"opening_cash": 50_000}), &ani);
    assert_eq!(status, 201, "{v}");
    let (status, sale) = a.post_as(
        "/v1/sales",
        &json!({"lines": [{"sku": "KOPI", "qty": 2}]}),
        &ani,
    );
    assert_eq!(status, 201, "{sale}");
    let sale_id = sale["sale_id"].as_str().expect("id");
    let (status, v) = a.post_as(
        &format!("/v1/sales/{sale_id}/refund"),
        &json!({"lines": [{"sku": "KOPI", "qty": 1}], "reason": "rusak",
                "approval": {"name": "Sari", "pin": PINS[1]}}),
        &ani,
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = a.post_as("/v1/shifts/close", &json!({"counted_cash": 55_000}), &ani);
    assert_eq!(status, 200, "{v}");

    wait_for(120, "the sale in PostgreSQL", || {
        (pg_sales(&rt, &db) == 1).then_some(())
    });
    wait_for(60, "the refund in PostgreSQL", || {
        let n = postgres()
            .psql(
                &db,
                "SELECT count(*) FROM sale_adjustments WHERE kind = 'refund'",
            )
            .expect("psql");
        (n.trim() == "1").then_some(())
    });
    wait_outbox_drained(&rt, &db, 60);

    // The till's own store document does hold the hashes: the search below would find
    // them if they leaked.
    a.shutdown();
    let on_till = a.chunk_bytes();
    assert!(
        String::from_utf8_lossy(&on_till).contains("$argon2id$"),
        "the till keeps the users' argon2id hashes"
    );

    let needles: Vec<String> = ["$argon2", "argon2id"]
        .into_iter()
        .flat_map(|n| [n.to_owned(), hex(n)])
        .chain(PINS.iter().filter(|p| p.len() >= 8).map(|p| p.to_string()))
        .collect();
    let tables = postgres()
        .psql(
            &db,
            "SELECT table_name FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
               AND table_name NOT IN ('docs', 'doc_chunks', '_sqlx_migrations')
             ORDER BY 1",
        )
        .expect("tables");
    let tables: Vec<&str> = tables.lines().filter(|l| !l.is_empty()).collect();
    for expected in ["sales", "sale_adjustments", "products", "outbox", "stores"] {
        assert!(tables.contains(&expected), "{expected} in {tables:?}");
    }
    for table in &tables {
        let text = postgres()
            .psql(
                &db,
                &format!("SELECT COALESCE(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t"),
            )
            .expect("dump");
        for needle in &needles {
            assert!(
                !text.to_lowercase().contains(&needle.to_lowercase()),
                "{needle:?} in PostgreSQL table {table}"
            );
        }
    }
    let mut events = 0;
    for topic in ["kasir.sales.v1", "kasir.stock.v1"] {
        for event in kafka_events(&tansu.brokers(), topic, 1, 20) {
            events += 1;
            let text = event.to_string();
            for needle in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "{needle:?} in {topic}: {text}"
                );
            }
        }
    }
    assert!(
        events >= 3,
        "the sale, the refund and stock events were read"
    );
}
