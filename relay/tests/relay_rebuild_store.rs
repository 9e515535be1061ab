//! A lost or damaged table is recoverable: `kasir-relay rebuild --store` re-materialises
//! a store from its documents in PostgreSQL. After sale lines are deleted, a sale row
//! goes missing and stock levels are overwritten by hand, the rebuild gives back exactly
//! what the till says (count, Σ totals, voids, stock per SKU, lines with their sales),
//! and the outbox gains no duplicate event.

mod support;

use serde_json::json;
use support::{RelayProc, Till, compare, pg_sales, pg_totals, runtime, sql, till_totals, wait_for};

fn outbox_rows(rt: &tokio::runtime::Runtime, db: &str) -> i64 {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("outbox");
        pool.close().await;
        n
    })
}

fn line_count(rt: &tokio::runtime::Runtime, db: &str) -> i64 {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sale_lines")
            .fetch_one(&pool)
            .await
            .expect("lines");
        pool.close().await;
        n
    })
}

#[test]
fn relay_rebuild_store_restores_damaged_tables_from_the_documents() {
    let rt = runtime();
    let db = support::fresh_database("rebuild_store");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("Toko Pulih");
    let mut till = Till::init_named("Toko Pulih", "T1");
    for (sku, name, price) in [
        ("BERAS", "Beras 5kg", "70000"),
        ("GULA", "Gula 1kg", "16000"),
    ] {
        till.ok(&[
            "product", "add", "--sku", sku, "--name", name, "--price", price, "--stock", "50",
        ]);
    }
    let ticket = relay.adopt_ticket(&tenant, &till.store_id());
    assert_eq!(till.ok(&["join", &ticket])["adopted"], true);
    till.start(&[]);
    let mut ids = Vec::new();
    for lines in [
        json!([{"sku": "BERAS", "qty": 1}]),
        json!([{"sku": "GULA", "qty": 3}, {"sku": "BERAS", "qty": 2}]),
        json!([{"sku": "GULA", "qty": 1}]),
    ] {
        let (status, v) = till.post("/v1/sales", &json!({"lines": lines}));
        assert_eq!(status, 201, "{v}");
        ids.push(v["sale_id"].as_str().expect("id").to_owned());
    }
    let (status, v) = till.post(
        &format!("/v1/sales/{}/void", ids[2]),
        &json!({"reason": "salah input"}),
    );
    assert_eq!(status, 201, "{v}");
    till.ok(&["stock", "receive", "--sku", "GULA", "--qty", "24"]);
    wait_for(120, "the till's day in PostgreSQL", || {
        let t = pg_totals(&rt, &db);
        (t.sales == 3 && t.voided == 1 && line_count(&rt, &db) == 4).then_some(())
    });
    wait_for(60, "the stock receipt in PostgreSQL", || {
        let on_till = till_totals(&till).stock.get("GULA").copied();
        (pg_totals(&rt, &db).stock.get("GULA").copied() == on_till).then_some(())
    });
    let before = compare(&rt, &db, &till);
    let events = outbox_rows(&rt, &db);

    // Damage: the lines gone, a sale gone, stock levels overwritten.
    sql(
        &rt,
        &db,
        &[
            "DELETE FROM sale_lines".to_owned(),
            format!("DELETE FROM sales WHERE sale_id = '{}'", ids[1]),
            "UPDATE stock_levels SET on_hand = 999".to_owned(),
        ],
    );
    assert_eq!(pg_sales(&rt, &db), 2);

    let out = relay.cli(&["rebuild", "--store", &till.store_id()]);
    assert_eq!(out["sales"], 3, "{out}");
    let after = compare(&rt, &db, &till);
    assert_eq!(after.sum_total, before.sum_total);
    assert_eq!(after.stock, before.stock);
    assert_eq!(line_count(&rt, &db), 4);
    assert_eq!(
        outbox_rows(&rt, &db),
        events,
        "a rebuild sends no event twice"
    );

    // Twice changes nothing; an unknown store is refused by name.
    relay.cli(&["rebuild", "--store", &till.store_id()]);
    compare(&rt, &db, &till);
    let stranger = "0190d000-0000-7000-8000-000000000000";
    let out = std::process::Command::new(support::relay_bin())
        .args(["rebuild", "--store", stranger])
        .env("DATABASE_URL", &db)
        .output()
        .expect("kasir-relay");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not served by this relay"));
}
