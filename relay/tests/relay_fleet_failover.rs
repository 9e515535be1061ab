//! Two relay instances behind one address share a fleet of stores, and one is killed -9
//! while the tills sell: nothing is lost.
//!
//! The instances share one database and one identity; every till knows both addresses
//! (as a DNS name with two records gives them) and keeps a session with whichever
//! answered. The tills are `kasir_testkit::fleet::SimTill`s — real devices with their
//! own keys and iroh endpoints, admitted by head office's invites, writing real signed
//! ledgers — many in this process. Each opened offline with a few sales, and every tenth
//! was offline for a week; all connect at once, and a few seconds into the selling
//! instance one is killed -9: its tills reconnect to the other and sell on. At the end, per store, the tills'
//! sales (count and Σ totals) equal PostgreSQL's and the sale events read back from
//! Kafka. `KASIR_FLEET_TEST_STORES` sets the fleet's size (three tills a store; 100 by
//! default, six minutes of a debug build on two cores — the fleet bench runs the same
//! kill at 1,000 stores).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kasir_testkit::fleet::{self, SimTill};
use support::{RelayProc, Tansu, runtime, wait_for, wait_outbox_drained};
use tokio_util::sync::CancellationToken;

/// Sales of today each till makes before its first session.
const OFFLINE_SALES: u64 = 3;

/// Sales a day of a till that was offline.
const BACKLOG_DAY_SALES: i64 = 50;

fn sell_round(tills: &[Arc<SimTill>], over: Duration) {
    let pause = over / tills.len().max(1) as u32;
    for (i, till) in tills.iter().enumerate() {
        till.sell(kasir_sync::now_ms(), i as u64 * 7 + 1)
            .expect("a sale");
        std::thread::sleep(pause);
    }
}

#[test]
fn relay_fleet_two_instances_lose_nothing_when_one_is_killed() {
    let stores: usize = std::env::var("KASIR_FLEET_TEST_STORES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rt = runtime();
    let db = support::fresh_database("fleet_failover");
    let tansu = Tansu::start();
    let log = std::env::var("KASIR_FLEET_TEST_LOG").unwrap_or_else(|_| "warn".into());
    let quiet = [("KASIR_LOG", log.as_str())];
    let mut relay1 = RelayProc::start_with(&db, Some(&tansu.brokers()), &quiet);
    let relay2 = RelayProc::start_with(&db, Some(&tansu.brokers()), &quiet);
    assert_eq!(relay1.endpoint_id, relay2.endpoint_id, "one identity");
    let addrs: Vec<SocketAddr> = [&relay1, &relay2]
        .iter()
        .map(|r| r.sync_addr().parse().expect("addr"))
        .collect();
    let tenant = relay1.tenant("PT Armada");
    let tickets = fleet::create_stores(&relay1, &tenant, stores, 3, 4).expect("stores");
    let tills = rt
        .block_on(fleet::join_all(&tickets, &addrs, 24))
        .expect("tills joined");
    assert_eq!(tills.len(), stores * 3);

    // Every tenth till was offline for a week: its days of sales are in flight when the
    // instance dies.
    let day = 86_400_000;
    for till in tills.iter().step_by(10) {
        for d in 1..=7 {
            for i in 0..BACKLOG_DAY_SALES {
                let at = kasir_sync::now_ms() - d * day + i * 60_000;
                till.sell(at, i as u64).expect("a backlog sale");
            }
        }
    }

    // Every till opened offline: a few sales of today wait for the first session, so
    // the relay first sees each of today's ledgers with several changes at once (a
    // Bloom filter's false positive on one of them once made relay and till trade the
    // same frames for ever).
    for (i, till) in tills.iter().enumerate() {
        for k in 0..OFFLINE_SALES {
            till.sell(kasir_sync::now_ms(), (i as u64) * 5 + k)
                .expect("an offline sale");
        }
    }

    let cancel = CancellationToken::new();
    let sessions: Vec<_> = {
        let _rt = rt.enter();
        tills
            .iter()
            .map(|t| t.stay_connected(cancel.clone()))
            .collect()
    };
    sell_round(&tills, Duration::from_secs(5));
    relay1.kill9();
    sell_round(&tills, Duration::from_secs(10));

    let written = fleet::written_per_store(&tills);
    let total: i64 = written.values().map(|(n, _)| n).sum();
    let backlog = tills.len().div_ceil(10) * 7 * BACKLOG_DAY_SALES as usize;
    assert_eq!(
        total as usize,
        stores * 3 * (2 + OFFLINE_SALES as usize) + backlog
    );
    wait_for(300, "every sale in PostgreSQL", || {
        let pg = rt.block_on(fleet::pg_sales_per_store(&db)).ok()?;
        (pg.values().map(|(n, _)| n).sum::<i64>() >= total).then_some(())
    });
    wait_outbox_drained(&rt, &db, 300);
    cancel.cancel();
    let reconnected: u64 = sessions
        .into_iter()
        .map(|s| rt.block_on(s).expect("session task").saturating_sub(1))
        .sum();
    assert!(
        reconnected > 0,
        "no till was on the killed instance: the failover was not exercised"
    );

    let pg = rt.block_on(fleet::pg_sales_per_store(&db)).expect("pg");
    let kafka = support::kafka_sales_per_store(&tansu.brokers(), total as usize, 120);
    let mut wrong = Vec::new();
    for (store, tills_side) in &written {
        let p = pg.get(store).copied().unwrap_or_default();
        let k = kafka.get(store).copied().unwrap_or_default();
        if p != *tills_side || k != *tills_side {
            wrong.push((store.clone(), *tills_side, p, k));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {stores} stores differ (store, tills, postgres, kafka): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(pg.len(), stores, "every store has its rows");
    for t in &tills {
        rt.block_on(t.close());
    }
}
