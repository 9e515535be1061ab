//! Three till processes sell while the relay is down; when it comes back, PostgreSQL
//! and Kafka end up holding exactly what the tills sold.

mod support;

use serde_json::json;
use support::Tansu;
use support::{
    RelayProc, Till, compare, kafka_event_ids, pg_event_counts, pg_sales, runtime, wait_for,
    wait_outbox_drained,
};

const SKUS: [(&str, &str, u32); 5] = [
    ("KOPI", "Kopi Kapal Api 25g", 1_500),
    ("INDOMIE", "Indomie Goreng", 3_100),
    ("TEH", "Teh Botol Sosro 450ml", 5_000),
    ("BERAS", "Beras Rojo Lele 5kg", 74_000),
    ("GULA", "Gulaku 1kg", 17_500),
];

#[test]
fn relay_down_while_three_tills_sell_then_postgres_and_kafka_match_exactly() {
    let rt = runtime();
    let db = support::fresh_database("offline_tills");
    let tansu = Tansu::start();
    let mut relay = RelayProc::start(&db, Some(&tansu.brokers()));
    let tenant = relay.tenant("Toko Sumber Rejeki");

    // The store begins on a till, and its owner hands it to the relay.
    let mut a = Till::with_products("Warung Bu Sri", "A1", &SKUS, 500);
    // A supervisor approves voids on the plain tills (which act as cashiers).
    a.ok(&[
        "user",
        "add",
        "--name",
        "Sari",
        "--role",
        "supervisor",
        "--pin",
        "4321",
    ]);
    let store = a.store_id();
    let ticket = relay.adopt_ticket(&tenant, &store);
    let adopted = a.ok(&["join", &ticket]);
    assert_eq!(adopted["adopted"], true, "{adopted}");
    assert_eq!(adopted["relay"], relay.endpoint_id.as_str());
    // The adoption handed the catalog and the opening stock over.
    wait_for(30, "the catalog in PostgreSQL", || {
        (pg_event_counts(&rt, &db).1 == SKUS.len() as i64).then_some(())
    });

    // The internet goes down; two more tills join on the LAN.
    relay.kill9();
    a.start(&[]);
    let mut b = Till::empty();
    let mut c = Till::empty();
    a.admit(&b);
    a.admit(&c);
    b.start(&[a.peer_arg()]);
    c.start(&[a.peer_arg(), b.peer_arg()]);

    let mut sold = 0;
    let tills = [&a, &b, &c];
    let mut first_sale = None;
    for round in 0..40 {
        for (i, till) in tills.iter().enumerate() {
            let (sku, _, _) = SKUS[(round + i) % SKUS.len()];
            let (other, _, _) = SKUS[(round * 3 + i + 1) % SKUS.len()];
            let (id, _) = till.sell(&[(sku, 1 + (round % 3) as u32), (other, 1)]);
            first_sale.get_or_insert(id);
            sold += 1;
        }
    }
    // A void (on another till than the one that sold) and a delivery.
    let voided = first_sale.expect("a sale");
    let (status, v) = b.post(
        &format!("/v1/sales/{voided}/void"),
        &json!({"reason": "salah input"}),
    );
    assert_eq!(status, 403, "a cashier's void needs approval: {v}");
    assert_eq!(v["error"]["code"], "approval_required", "{v}");
    let (status, v) = b.post(
        &format!("/v1/sales/{voided}/void"),
        &json!({"reason": "salah input", "approval": {"name": "Sari", "pin": "4321"}}),
    );
    assert!(status == 200 || status == 201, "void: {status} {v}");
    assert_eq!(v["approved_by"], "Sari", "{v}");
    let (status, v) = c.post(
        "/v1/stock/movements",
        &json!({"kind": "receive", "sku": "GULA", "qty": 24}),
    );
    assert_eq!(status, 201, "receive: {v}");
    assert_eq!(
        pg_sales(&rt, &db),
        0,
        "nothing reaches PostgreSQL while the relay is down"
    );

    // The LAN converges on its own.
    wait_for(60, "the LAN to converge", || {
        let n = support::till_totals(&a).sales;
        (n == sold).then_some(())
    });

    // The relay comes back: every till reaches it through the roster address.
    relay.restart();
    wait_for(120, "PostgreSQL to hold every sale", || {
        (pg_sales(&rt, &db) == sold).then_some(())
    });
    // Voids and stock may trail the sales by a sync round.
    wait_for(60, "PostgreSQL to equal the tills", || {
        let t = support::till_totals(&a);
        let p = support::pg_totals(&rt, &db);
        (p.voided == t.voided && p.stock == t.stock).then_some(())
    });
    // Head office's void audit: who voided, who approved.
    let (till, approver): (Option<String>, Option<String>) = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.expect("pg");
        let row = sqlx::query_as(
            "SELECT till_code, approved_by FROM sale_adjustments WHERE kind = 'void'",
        )
        .fetch_one(&pool)
        .await
        .expect("the void");
        pool.close().await;
        row
    });
    assert_eq!(approver.as_deref(), Some("Sari"));
    assert!(till.is_some(), "the void's till");
    let totals = compare(&rt, &db, &a);
    assert_eq!(totals.sales, sold);
    assert_eq!(totals.voided, 1);
    for till in [&b, &c] {
        let t = support::till_totals(till);
        assert_eq!((t.sales, t.sum_total), (totals.sales, totals.sum_total));
    }

    // Kafka: one event per sale, void and movement, keyed by store.
    wait_outbox_drained(&rt, &db, 60);
    let (sale_events, movement_events) = pg_event_counts(&rt, &db);
    assert_eq!(sale_events, sold + 1, "sales plus one void");
    let (_, ids) = kafka_event_ids(&tansu.brokers(), "kasir.sales.v1", sale_events as usize, 60);
    assert_eq!(
        ids.len() as i64,
        sale_events,
        "distinct sale events on Kafka"
    );
    let (_, ids) = kafka_event_ids(
        &tansu.brokers(),
        "kasir.stock.v1",
        movement_events as usize,
        60,
    );
    assert_eq!(
        ids.len() as i64,
        movement_events,
        "distinct stock events on Kafka"
    );

    drop((a, b, c));
}
