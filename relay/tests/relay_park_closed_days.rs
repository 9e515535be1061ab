//! Closed business days leave the relay's memory and nothing notices: a till that is
//! current costs no read-back, a restarted relay lists parked days without loading them,
//! a late sale into a parked day and a new till that needs every day are served from
//! PostgreSQL, and a second instance merges another's chunk into a day it parked.
//!
//! Two relay instances share one database (`KASIR_RELAY_PARK_AFTER_S=1`: a closed day
//! idle for a second is parked). The tills are `kasir_testkit::fleet::SimTill`s: real
//! devices with their own keys and iroh endpoints writing real signed ledgers, so past
//! days are real closed ledgers. Till A syncs with instance one, till B with instance two.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use kasir_testkit::fleet::{self, SimTill};
use kasir_testkit::metric;
use support::{RelayProc, runtime, wait_for};

/// Days before today that till A sold on while offline.
const PAST_DAYS: i64 = 4;

/// Sales on each of those days.
const DAY_SALES: i64 = 10;

const DAY_MS: i64 = 86_400_000;

fn counter(relay: &RelayProc, name: &str) -> f64 {
    metric(&relay.metrics(), &format!("kasir_relay_{name}_total"))
}

/// Documents an instance holds out of memory now: parked less read back.
fn out_of_memory(relay: &RelayProc) -> f64 {
    counter(relay, "docs_parked") - counter(relay, "docs_unparked")
}

/// An instant at noon (WIB, the simulated shops' zone) `days` before today: every
/// sale of that day lands in one ledger, and the day is closed in every time zone.
fn noon_days_ago(now: i64, days: i64) -> i64 {
    let wib = 7 * 3_600_000;
    let day_start = (now - days * DAY_MS + wib).div_euclid(DAY_MS) * DAY_MS - wib;
    day_start + 12 * 3_600_000
}

/// The documents whose parked record still matches their stored chunks (what a load
/// lists without reading them), with their business dates.
fn parked_in_postgres(rt: &tokio::runtime::Runtime, db: &str) -> Vec<String> {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("pg");
        let dates: Vec<String> = sqlx::query_scalar(
            "WITH sets AS (SELECT store_id, doc_id, array_agg(hash ORDER BY hash) AS hashes
                             FROM doc_chunks GROUP BY store_id, doc_id)
             SELECT coalesce(d.business_date::text, '-') FROM docs d
               JOIN sets s ON s.store_id = d.store_id AND s.doc_id = d.doc_id
              WHERE d.parked_chunks = s.hashes ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .expect("parked docs");
        pool.close().await;
        dates
    })
}

/// Waits until both instances hold exactly `n` documents out of memory, PostgreSQL
/// records `n` valid parked documents, and that holds two seconds later (the instances
/// compact what they park, and each reads back a day the other's compaction touched).
fn wait_settled(rt: &tokio::runtime::Runtime, db: &str, relays: [&RelayProc; 2], n: usize) {
    wait_for(90, "parking settled", || {
        let now = || {
            relays.iter().all(|r| out_of_memory(r) == n as f64)
                && parked_in_postgres(rt, db).len() == n
        };
        if !now() {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        now().then_some(())
    });
}

/// Every document `till` holds with the same heads as `other`'s.
fn holds_all_of(till: &SimTill, other: &SimTill) -> bool {
    let mine = till.manifest();
    let theirs: BTreeMap<_, _> = other.manifest();
    theirs.iter().all(|(id, heads)| mine.get(id) == Some(heads))
}

#[test]
fn relay_parks_closed_days_and_serves_them_from_postgres() {
    let rt = runtime();
    let db = support::fresh_database("park_closed_days");
    let env = [("KASIR_RELAY_PARK_AFTER_S", "1")];
    let mut one = RelayProc::start_with(&db, None, &env);
    let two = RelayProc::start_with(&db, None, &env);
    let addr = |r: &RelayProc| -> SocketAddr { r.sync_addr().parse().expect("addr") };
    let tenant = one.tenant("Warung Bu Tini");
    let tickets = fleet::create_stores(&one, &tenant, 1, 2, 1).expect("a store");
    let till_a = Arc::new(
        rt.block_on(SimTill::join(&tickets[0][0], &[addr(&one)]))
            .expect("till A joins through instance one"),
    );
    let till_b = Arc::new(
        rt.block_on(SimTill::join(&tickets[0][1], &[addr(&two)]))
            .expect("till B joins through instance two"),
    );

    // Till A was offline for four days (the day before yesterday and three before it:
    // closed in every time zone), and sold twice today.
    let now = kasir_sync::now_ms();
    for d in 2..=PAST_DAYS + 1 {
        for i in 0..DAY_SALES {
            till_a
                .sell(noon_days_ago(now, d) + i * 60_000, i as u64)
                .expect("a past sale");
        }
    }
    till_a.sell(now, 1).expect("a sale");
    till_a.sell(now, 2).expect("a sale");
    rt.block_on(till_a.sync_once()).expect("A syncs");
    let pg_count = || -> i64 {
        rt.block_on(fleet::pg_sales_per_store(&db))
            .expect("pg")
            .values()
            .map(|(n, _)| n)
            .sum()
    };
    assert_eq!(
        pg_count(),
        PAST_DAYS * DAY_SALES + 2,
        "every sale persisted"
    );
    // Instance two loads the store when B syncs (and B receives every day from it).
    rt.block_on(till_b.sync_once()).expect("B syncs");
    assert!(holds_all_of(&till_b, &till_a), "B holds A's days");

    // Both instances park the four closed days once they are idle; today's stays.
    wait_settled(&rt, &db, [&one, &two], PAST_DAYS as usize);
    let today = kasir_crdt::BusinessDate::at(now, 7 * 60).to_string();
    let parked = parked_in_postgres(&rt, &db);
    assert!(
        !parked.contains(&today) && !parked.contains(&"-".to_owned()),
        "only closed days are parked: {parked:?} (today {today})"
    );

    // A till that is current costs nothing: A sells today and syncs, and no parked day
    // is read back.
    till_a.sell(kasir_sync::now_ms(), 3).expect("a sale");
    rt.block_on(till_a.sync_once()).expect("A syncs");
    assert_eq!(pg_count(), PAST_DAYS * DAY_SALES + 3);
    assert_eq!(counter(&one, "docs_unparked"), 0.0, "nothing read back");

    // Restarted, instance one lists the parked days without loading them.
    one.restart();
    rt.block_on(till_a.sync_once())
        .expect("A syncs after the restart");
    assert!(
        one.log().contains(&format!("parked={PAST_DAYS}")),
        "the restarted instance kept the closed days out of memory: {}",
        one.log()
    );
    assert_eq!(counter(&one, "docs_unparked"), 0.0, "nothing read back");

    // A late sale into a parked day (a refund-day correction, a clock fixed): instance
    // one reads that day back and merges it; instance two merges the chunk one stored
    // into the day it parked, and B receives it from two.
    let two_read_back = counter(&two, "docs_unparked");
    till_a
        .sell(noon_days_ago(now, 3) + 3_600_000, 7)
        .expect("a late sale");
    rt.block_on(till_a.sync_once())
        .expect("A syncs the late sale");
    assert_eq!(
        pg_count(),
        PAST_DAYS * DAY_SALES + 4,
        "the late sale persisted"
    );
    assert_eq!(counter(&one, "docs_unparked"), 1.0, "one day read back");
    wait_for(30, "instance two merged the late sale", || {
        (counter(&two, "docs_unparked") > two_read_back).then_some(())
    });
    rt.block_on(till_b.sync_once()).expect("B syncs");
    assert!(holds_all_of(&till_b, &till_a), "B holds A's late sale");

    // A new till that has nothing gets every day, parked or not, from instance one.
    let (status, invite) = support::api(
        &one,
        &support::token(&one, &tenant, "owner"),
        "POST",
        &format!("/v1/stores/{}/invites", till_a.store_id()),
        Some(&serde_json::json!({"till_code": "T9"})),
    );
    assert_eq!(status, 201, "{invite}");
    let ticket = invite["ticket"].as_str().expect("a ticket").to_owned();
    let till_c = rt
        .block_on(SimTill::join(&ticket, &[addr(&one)]))
        .expect("till C joins");
    rt.block_on(till_c.sync_once()).expect("C syncs");
    // A receives the roster that admitted C (the one document A is behind on).
    rt.block_on(till_a.sync_once()).expect("A syncs");
    assert!(
        holds_all_of(&till_c, &till_a),
        "C holds every day of A's: C {:?}, A {:?}",
        till_c.manifest(),
        till_a.manifest()
    );
    assert!(
        counter(&one, "docs_unparked") >= PAST_DAYS as f64,
        "the closed days were read back for C"
    );

    // Nothing lost: PostgreSQL holds what A wrote.
    let pg = rt.block_on(fleet::pg_sales_per_store(&db)).expect("pg");
    assert_eq!(
        pg.get(&till_a.store_id().to_string()).copied(),
        Some((till_a.written().0 as i64, till_a.written().1)),
    );
    for t in [&till_a, &till_b] {
        rt.block_on(t.close());
    }
    rt.block_on(till_c.close());
}
