//! Data from before signed changes upgrades, and nothing is lost. The fixture
//! (`tests/fixtures/legacy-a46887f`, made by `scripts/make-legacy-fixture` with the
//! binaries of commit a46887f, the last release without signatures) holds a till's data
//! directory and its relay's PostgreSQL database, synced: four sales, one voided.
//!
//! - The old till directory is refused with a message naming `kasir upgrade`; after the
//!   upgrade every sale is there, with the same totals, and it sells again.
//! - The old relay database adopts its history once (`kasir-relay migrate`).
//! - A new till joining the upgraded owner catches up the old history — the owner's
//!   adoption signatures verify — and a new sale reaches PostgreSQL through the relay;
//!   no honest peer refuses anything.

use std::path::PathBuf;

use kasir_testkit::pg::{fresh_database, postgres};
use kasir_testkit::relay::RelayProc;
use kasir_testkit::{Till, copy_dir, totals, wait_for};
use serde_json::Value;

fn fixture() -> PathBuf {
    kasir_testkit::foreign::root().join("tests/fixtures/legacy-a46887f")
}

fn sale_ids(till: &Till) -> Vec<String> {
    let v = till.ok(&["sales"]);
    let mut ids: Vec<String> = v["sales"]
        .as_array()
        .expect("sales")
        .iter()
        .map(|s| s["sale_id"].as_str().expect("sale_id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Changes refused for any reason, from a Prometheus text page.
fn refused(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("kasir_sync_refused_changes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn upgrade_legacy_data_keeps_every_sale_and_syncs_signed() {
    let expect: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("expect.json")).expect("expect.json"))
            .expect("expect json");
    let old_ids: Vec<String> = expect["sales"]
        .as_array()
        .expect("sales")
        .iter()
        .map(|s| s.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(old_ids.len(), 4, "{expect}");

    // The till: refused until upgraded, then whole.
    let mut owner = Till::empty();
    copy_dir(&fixture().join("till"), owner.path());
    let err = owner.fails(&["status"]);
    assert!(err.contains("kasir upgrade"), "{err}");
    let upgraded = owner.ok(&["upgrade"]);
    assert!(
        upgraded["adopted_changes"].as_u64().unwrap_or(0) > 0,
        "{upgraded}"
    );
    assert_eq!(
        owner.ok(&["upgrade"])["adopted_changes"],
        0,
        "a second upgrade adopts nothing"
    );
    assert_eq!(
        owner.store_id(),
        expect["store_id"].as_str().expect("store")
    );
    assert_eq!(sale_ids(&owner), old_ids, "every old sale is there");

    // The relay database: restored as it was, adopted once.
    let db = fresh_database("legacy_relay");
    let name = db.rsplit('/').next().expect("db name").to_owned();
    // The role every relay database's policies name (a cluster-wide role, so not in
    // the dump; `kasir-relay migrate` creates it on a new cluster).
    postgres()
        .psql(
            &name,
            "DO $$ BEGIN CREATE ROLE kasir_api NOLOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .expect("role kasir_api");
    postgres()
        .run_file(&name, &fixture().join("relay.sql"))
        .expect("restore the old relay database");
    let rt = kasir_testkit::runtime();
    assert_eq!(
        totals::pg_sales(&rt, &db),
        4,
        "the old relay held the sales"
    );
    let out = std::process::Command::new(kasir_testkit::process::relay_bin())
        .args(["--json", "migrate"])
        .env("DATABASE_URL", &db)
        .output()
        .expect("kasir-relay migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let migrated: Value = serde_json::from_slice(&out.stdout).expect("migrate json");
    assert!(
        migrated["adopted_changes"].as_u64().unwrap_or(0) > 0,
        "{migrated}"
    );
    let relay = RelayProc::start(&db, None);

    // The owner sells again and syncs with the relay; a new till joins and catches up.
    // (The roster holds the old relay's address; it listens elsewhere now.)
    owner.start(&[format!("{}@{}", relay.endpoint_id, relay.sync_addr())]);
    let before = totals::till_totals(&owner);
    assert_eq!(before.sales, 4);
    assert_eq!(before.voided, 1);
    assert_eq!(
        before.sum_total,
        expect["completed_total"].as_i64().expect("total") + 9_000,
        "the voided sale's Rp9.000 is in the sum of all sales"
    );
    let (new_sale, _) = owner.sell(&[("KOPI", 1)]);
    wait_for(60, "the new sale to reach PostgreSQL", || {
        (totals::pg_sales(&rt, &db) == 5).then_some(())
    });
    let mut newcomer = Till::empty();
    owner.admit(&newcomer);
    wait_for(30, "the owner to hand the relay everything", || {
        (owner.get("/v1/status").1["unsynced_docs"] == 0).then_some(())
    });
    let owner_totals = totals::till_totals(&owner);
    let owner_metrics = till_metrics(&owner);
    // With the owner gone, the new till has only the relay to learn the old history
    // from: the relay's adoption signatures must verify.
    owner.shutdown();
    newcomer.start(&[format!("{}@{}", relay.endpoint_id, relay.sync_addr())]);
    let mut all = old_ids.clone();
    all.push(new_sale);
    all.sort();
    wait_for(60, "the new till to hold the old history", || {
        (sale_ids(&newcomer) == all).then_some(())
    });
    let theirs = totals::till_totals(&newcomer);
    assert_eq!(theirs.sum_total, owner_totals.sum_total);
    assert_eq!(theirs.voided, 1);
    assert_eq!(
        theirs.stock, owner_totals.stock,
        "stock agrees, the old void included"
    );
    let pg = totals::compare(&rt, &db, &newcomer);
    assert_eq!(pg.sales, 5);

    // Nobody refused anything: the upgraded history verifies everywhere.
    for (who, text) in [
        ("owner", owner_metrics),
        ("newcomer", till_metrics(&newcomer)),
        ("relay", relay_metrics(&relay)),
    ] {
        assert_eq!(refused(&text), 0.0, "{who} refused changes:\n{text}");
    }
}

fn till_metrics(t: &Till) -> String {
    t.get("/metrics").1.as_str().unwrap_or_default().to_owned()
}

fn relay_metrics(relay: &RelayProc) -> String {
    ureq::get(format!("{}/metrics", relay.http_url()))
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .unwrap_or_default()
}
