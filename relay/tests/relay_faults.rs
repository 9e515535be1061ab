//! Faults on the cloud side, each followed by a full comparison with the tills: the
//! relay killed with SIGKILL while it materialises a backlog, the Kafka broker
//! unreachable for a while, PostgreSQL restarted under load. Nothing may be lost or
//! duplicated in PostgreSQL; Kafka may only repeat events (same `event_id`).

mod support;

use support::Tansu;
use support::{
    RelayProc, Till, compare, kafka_event_ids, pg_event_counts, pg_sales, pg_totals, runtime,
    till_totals, wait_for, wait_outbox_drained,
};

const SKUS: [(&str, &str, u32); 4] = [
    ("KOPI", "Kopi", 1_500),
    ("TEH", "Teh", 5_000),
    ("ROTI", "Roti", 12_000),
    ("SABUN", "Sabun", 4_200),
];

fn sell_round(tills: &[&Till], rounds: usize, offset: usize) -> i64 {
    let mut n = 0;
    for round in 0..rounds {
        for (i, t) in tills.iter().enumerate() {
            let (sku, _, _) = SKUS[(round + i + offset) % SKUS.len()];
            let (other, _, _) = SKUS[(round + 2 * i + offset + 1) % SKUS.len()];
            t.sell(&[(sku, 1 + (round % 2) as u32), (other, 2)]);
            n += 1;
        }
    }
    n
}

fn settle(rt: &tokio::runtime::Runtime, db: &str, tills: &[&Till], sold: i64, what: &str) {
    wait_for(90, &format!("the LAN to converge ({what})"), || {
        tills
            .iter()
            .all(|t| till_totals(t).sales == sold)
            .then_some(())
    });
    wait_for(
        120,
        &format!("PostgreSQL to hold every sale ({what})"),
        || (pg_sales(rt, db) == sold).then_some(()),
    );
    wait_for(
        60,
        &format!("PostgreSQL stock to equal the tills' ({what})"),
        || (pg_totals(rt, db).stock == till_totals(tills[0]).stock).then_some(()),
    );
    let totals = compare(rt, db, tills[0]);
    assert_eq!(totals.sales, sold, "{what}");
}

#[test]
fn relay_killed_broker_paused_and_postgres_restarted_lose_and_duplicate_nothing() {
    let rt = runtime();
    let mut pg = support::private_postgres();
    let db = pg.cluster.create_database("faults").expect("database");
    let mut tansu = Tansu::start();
    let mut relay = RelayProc::start(&db, Some(&tansu.brokers()));
    let tenant = relay.tenant("Toko Makmur");
    let mut a = Till::with_products("Minimarket Makmur", "A1", &SKUS, 2000);
    let store = a.store_id();
    let ticket = relay.adopt_ticket(&tenant, &store);
    // The owner adopts the store to the relay while the till runs (through its daemon).
    a.start(&[]);
    let adopted = a.ok(&["join", &ticket]);
    assert_eq!(adopted["adopted"], true, "{adopted}");
    wait_for(30, "the relay to receive the catalog", || {
        (pg_event_counts(&rt, &db).1 == SKUS.len() as i64).then_some(())
    });
    relay.kill9();
    let mut b = Till::empty();
    let mut c = Till::empty();
    a.admit(&b);
    a.admit(&c);
    b.start(&[a.peer_arg()]);
    c.start(&[a.peer_arg(), b.peer_arg()]);
    let tills = [&a, &b, &c];

    // 1. A backlog, and the relay killed as soon as it starts writing it.
    let mut sold = sell_round(&tills, 60, 0);
    relay.restart();
    wait_for(120, "the relay to start materialising", || {
        (pg_sales(&rt, &db) > 0).then_some(())
    });
    relay.kill9();
    let partial = pg_sales(&rt, &db);
    relay.restart();
    settle(&rt, &db, &tills, sold, "after kill -9 of the relay");
    eprintln!("kill -9 hit the relay with {partial} of {sold} sales materialised");

    // 2. The broker unreachable: sync and materialisation go on, events wait.
    tansu.pause();
    sold += sell_round(&tills, 10, 1);
    settle(&rt, &db, &tills, sold, "while the broker is paused");
    let pending: i64 = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.expect("connect");
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await
            .expect("pending")
    });
    assert!(
        pending > 0,
        "events must wait in the outbox while the broker is away"
    );
    tansu.resume();

    // 3. PostgreSQL restarted while the tills sell.
    sold += sell_round(&tills, 5, 2);
    pg.cluster.restart().expect("restart PostgreSQL");
    sold += sell_round(&tills, 5, 3);
    settle(&rt, &db, &tills, sold, "after a PostgreSQL restart");

    // Kafka: everything delivered at least once, deduplicated by event id.
    wait_outbox_drained(&rt, &db, 120);
    let (sale_events, movement_events) = pg_event_counts(&rt, &db);
    assert_eq!(sale_events, sold);
    let (_, ids) = kafka_event_ids(&tansu.brokers(), "kasir.sales.v1", sale_events as usize, 60);
    assert_eq!(ids.len() as i64, sale_events, "distinct sale events");
    let (read, ids) = kafka_event_ids(
        &tansu.brokers(),
        "kasir.stock.v1",
        movement_events as usize,
        60,
    );
    assert_eq!(ids.len() as i64, movement_events, "distinct stock events");
    eprintln!("stock topic: {read} messages, {} distinct", ids.len());
    drop((a, b, c));
}
