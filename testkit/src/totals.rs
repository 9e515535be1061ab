//! What PostgreSQL holds, compared with what a till shows: the checks of the relay's
//! end-to-end tests.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;

use crate::till::Till;
use crate::wait_for;

/// The number of sales PostgreSQL holds.
pub fn pg_sales(rt: &tokio::runtime::Runtime, db: &str) -> i64 {
    rt.block_on(async {
        let Ok(pool) = sqlx::PgPool::connect(db).await else {
            return -1;
        };
        let n = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sales")
            .fetch_one(&pool)
            .await
            .unwrap_or(-1);
        pool.close().await;
        n
    })
}

/// What the tills' own view and PostgreSQL agree on.
#[derive(Debug)]
pub struct Totals {
    /// Sales.
    pub sales: i64,
    /// Σ total of all sales.
    pub sum_total: i64,
    /// Voided sales.
    pub voided: i64,
    /// Stock per SKU, in thousandths.
    pub stock: BTreeMap<String, i64>,
}

fn milli(v: &Value) -> i64 {
    (v.as_f64().expect("a number") * 1000.0).round() as i64
}

/// The totals as a till sees them (after LAN convergence it sees the whole store).
pub fn till_totals(till: &Till) -> Totals {
    let (_, sales) = till.get("/v1/sales");
    let sales = sales["sales"].as_array().expect("sales").clone();
    let (_, stock) = till.get("/v1/stock");
    Totals {
        sales: sales.len() as i64,
        sum_total: sales
            .iter()
            .map(|s| s["total"].as_i64().expect("total"))
            .sum(),
        voided: sales.iter().filter(|s| s["status"] == "voided").count() as i64,
        stock: stock["stock"]
            .as_array()
            .expect("stock")
            .iter()
            .map(|s| {
                (
                    s["sku"].as_str().expect("sku").to_owned(),
                    milli(&s["on_hand"]),
                )
            })
            .collect(),
    }
}

/// The totals PostgreSQL holds.
pub fn pg_totals(rt: &tokio::runtime::Runtime, db: &str) -> Totals {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        let row = sqlx::query(
            "SELECT count(*) AS n, COALESCE(sum(total), 0)::int8 AS sum,
                    count(*) FILTER (WHERE status = 'voided') AS voided FROM sales",
        )
        .fetch_one(&pool)
        .await
        .expect("sales totals");
        let stock = sqlx::query("SELECT sku, (on_hand * 1000)::int8 AS milli FROM stock_levels")
            .fetch_all(&pool)
            .await
            .expect("stock levels");
        let lines: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sale_lines l LEFT JOIN sales s USING (sale_id) WHERE s.sale_id IS NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("orphan lines");
        assert_eq!(lines, 0, "sale lines without their sale");
        pool.close().await;
        Totals {
            sales: row.get("n"),
            sum_total: row.get("sum"),
            voided: row.get("voided"),
            stock: stock
                .iter()
                .map(|r| (r.get::<String, _>("sku"), r.get::<i64, _>("milli")))
                .collect(),
        }
    })
}

/// Asserts that PostgreSQL equals the till's view: count, Σ totals, voids, stock per SKU.
pub fn compare(rt: &tokio::runtime::Runtime, db: &str, till: &Till) -> Totals {
    let t = till_totals(till);
    let p = pg_totals(rt, db);
    assert_eq!(p.sales, t.sales, "sale count: PostgreSQL vs till");
    assert_eq!(p.sum_total, t.sum_total, "Σ totals: PostgreSQL vs till");
    assert_eq!(p.voided, t.voided, "voided sales: PostgreSQL vs till");
    let till_stock: BTreeMap<_, _> = t.stock.iter().filter(|(_, v)| **v != 0).collect();
    let pg_stock: BTreeMap<_, _> = p.stock.iter().filter(|(_, v)| **v != 0).collect();
    assert_eq!(pg_stock, till_stock, "stock per SKU: PostgreSQL vs till");
    p
}

/// Counts PostgreSQL expects on the topics: (sales + voids + refunds, stock movements).
pub fn pg_event_counts(rt: &tokio::runtime::Runtime, db: &str) -> (i64, i64) {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        // One statement, so one snapshot: counted one by one, a materialisation
        // committing in between would show its outbox rows without their records.
        let (sales, movements, outbox): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sales) + (SELECT count(*) FROM sale_adjustments),
                    (SELECT count(*) FROM stock_movements),
                    (SELECT count(*) FROM outbox)",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(outbox, sales + movements, "one outbox row per event");
        pool.close().await;
        (sales, movements)
    })
}

/// Outbox rows not yet published; `None` while the database cannot be reached.
pub fn pg_outbox_pending(rt: &tokio::runtime::Runtime, db: &str) -> Option<i64> {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.ok()?;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await
            .ok()?;
        pool.close().await;
        Some(n)
    })
}

/// Waits until the outbox is fully published.
pub fn wait_outbox_drained(rt: &tokio::runtime::Runtime, db: &str, secs: u64) {
    wait_for(secs, "the outbox to drain", || {
        (pg_outbox_pending(rt, db) == Some(0)).then_some(())
    });
}
