//! Head-office dashboard latency with a year of data: `S` stores (env
//! `KASIR_BENCH_STORES`, default 50) of one tenant, each with `D` sales a day (env
//! `KASIR_BENCH_DAILY`, default 60; two lines each) for 365 days, 200 products with stock
//! each — written straight into the materialised tables with `generate_series`. The
//! dashboard and API are served in-process over real HTTP on loopback; each page is
//! fetched `R` times (env `KASIR_BENCH_ROUNDS`, default 30) with a logged-in owner's
//! cookie, and `GET /v1/health` (one trivial query) is the baseline of the same run.
//! Printed as one JSON document: p50/p95/max per page and p95 against the baseline.
//!
//! PostgreSQL is a throwaway cluster (`kasir_testkit::pg::Cluster`, fsync off); the
//! schema, its indexes and row-level security are the migrations'.
//!
//! Run: `cargo bench --workspace --bench dashboard`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kasir_relay::api::{self, ApiState};
use kasir_relay::auth::{self, ApiRole};
use kasir_relay::db;
use kasir_testkit::percentile;
use kasir_testkit::pg::Cluster;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

const SECRET: &[u8] = b"dashboard-bench-secret-0123456789abcdef";

fn env_num(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// Fills the tables: a year of `daily` sales for each of `stores` stores.
async fn seed(
    pool: &sqlx::PgPool,
    stores: i64,
    daily: i64,
) -> Result<(uuid::Uuid, Vec<uuid::Uuid>)> {
    let tenant = db::create_tenant(pool, "PT Bench Nusantara").await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO stores (store_id, tenant_id, name)
           SELECT gen_random_uuid(), '{tenant}', 'Outlet ' || lpad(i::text, 2, '0')
             FROM generate_series(1, {stores}) i;
         INSERT INTO sales (sale_id, tenant_id, store_id, receipt_no, till_code, cashier,
              business_date, subtotal, tax, service_charge, rounding, total, status, refunded,
              payments, created_at, dpp, dpp_other, tax_kind)
           SELECT st.store_id::text || '-' || d::text || '-' || n, st.tenant_id, st.store_id,
                  'T' || (n % 3 + 1) || '-' || n, 'T' || (n % 3 + 1),
                  (ARRAY['Ani','Budi','Citra','Dewi'])[n % 4 + 1],
                  (current_date - d), 20000 + (n * 137) % 80000, 0, 0, 0,
                  20000 + (n * 137) % 80000,
                  CASE WHEN n % 97 = 0 THEN 'voided' ELSE 'completed' END, 0,
                  CASE WHEN n % 3 = 0 THEN '[{{\"method\":\"qris\",\"amount\":50000}}]'::jsonb
                       ELSE '[{{\"method\":\"cash\",\"amount\":100000}}]'::jsonb END,
                  (current_date - d) + make_interval(hours => 7 + n % 14),
                  CASE WHEN n % 2 = 0 THEN 18000 ELSE 0 END,
                  CASE WHEN n % 2 = 0 THEN 16500 ELSE 0 END,
                  CASE WHEN n % 2 = 0 THEN 'ppn' ELSE 'none' END
             FROM stores st, generate_series(0, 364) d, generate_series(1, {daily}) n;
         INSERT INTO sale_lines (sale_id, line_no, tenant_id, store_id, product_id, sku, name,
              qty, unit_price, discount, line_total)
           SELECT s.sale_id, l, s.tenant_id, s.store_id, 'p' || ((hashtext(s.sale_id) + l) & 1023) % 200,
                  'SKU' || ((hashtext(s.sale_id) + l) & 1023) % 200,
                  'Produk ' || ((hashtext(s.sale_id) + l) & 1023) % 200, 1, s.total / 2, 0, s.total / 2
             FROM sales s, generate_series(1, 2) l;
         INSERT INTO products (tenant_id, store_id, product_id, sku, name, price, unit, active,
              updated_at_ms, cost, min_stock)
           SELECT st.tenant_id, st.store_id, 'p' || p, 'SKU' || p, 'Produk ' || p, 10000, 'pcs',
                  true, 1, 7000, 10
             FROM stores st, generate_series(0, 199) p;
         INSERT INTO stock_levels (tenant_id, store_id, sku, on_hand)
           SELECT st.tenant_id, st.store_id, 'SKU' || p, (p % 50) - 3
             FROM stores st, generate_series(0, 199) p;"
    )))
    .execute(pool)
    .await
    .context("seeding a year of sales")?;
    // What autovacuum does on a live database: statistics and the visibility map.
    sqlx::raw_sql("VACUUM ANALYZE").execute(pool).await?;
    let stores: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT store_id FROM stores ORDER BY name")
        .fetch_all(pool)
        .await?;
    Ok((tenant, stores))
}

fn main() -> Result<()> {
    let stores_n = env_num("KASIR_BENCH_STORES", 50);
    let daily = env_num("KASIR_BENCH_DAILY", 60);
    let rounds = env_num("KASIR_BENCH_ROUNDS", 30).max(1) as usize;
    let tmp = tempfile::tempdir()?;
    let cluster = Cluster::start(&tmp.path().join("pg"))?;
    let url = cluster.create_database("dashboard")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let seeded = Instant::now();
    let (addr, tenant, stores, sales) = rt.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await?;
        db::migrate(&pool).await?;
        let (tenant, stores) = seed(&pool, stores_n, daily).await?;
        let sales: i64 = sqlx::query_scalar("SELECT count(*) FROM sales")
            .fetch_one(&pool)
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = api::router(ApiState::new(pool, SECRET.to_vec()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        anyhow::Ok((addr, tenant, stores, sales))
    })?;
    let seed_s = seeded.elapsed().as_secs_f64();
    let token = auth::mint(SECRET, tenant, ApiRole::Owner, Duration::from_secs(3600))?;
    let cookie = format!("kasir_ho={token}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("http://{addr}");
    let outlet = stores[stores.len() / 2];
    let last_month = {
        use chrono::Datelike;
        let today = chrono::Utc::now().date_naive();
        let first = today.with_day(1).unwrap_or(today);
        first
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(first)
            .format("%Y-%m")
            .to_string()
    };
    let pages = [
        ("health (baseline)", "/v1/health".to_owned()),
        ("ringkasan", "/".to_owned()),
        ("outlet", format!("/toko/{outlet}")),
        ("stok.csv", format!("/toko/{outlet}/stok.csv")),
        ("terlaris.csv", format!("/toko/{outlet}/terlaris.csv")),
        (
            "pajak (last full month)",
            format!("/pajak?bulan={last_month}"),
        ),
        ("peringatan", "/peringatan".to_owned()),
        (
            "api daily-sales",
            format!("/v1/reports/daily-sales?store={outlet}"),
        ),
    ];
    let mut results = serde_json::Map::new();
    let mut baseline_p95 = 0.0;
    for (name, path) in &pages {
        let mut samples = Vec::with_capacity(rounds);
        for i in 0..=rounds {
            let t = Instant::now();
            let mut r = agent
                .get(&format!("{base}{path}"))
                .header("Cookie", &cookie)
                .header("Authorization", &format!("Bearer {token}"))
                .call()
                .with_context(|| format!("GET {path}"))?;
            let _ = r.body_mut().read_to_vec()?;
            anyhow::ensure!(r.status() == 200, "GET {path}: {}", r.status());
            // The first request warms the plan cache and the pool.
            if i > 0 {
                samples.push(ms(t.elapsed()));
            }
        }
        samples.sort_by(f64::total_cmp);
        let p95 = percentile(&samples, 0.95);
        if path == "/v1/health" {
            baseline_p95 = p95;
        }
        results.insert(
            (*name).to_owned(),
            json!({
                "p50_ms": percentile(&samples, 0.5),
                "p95_ms": p95,
                "max_ms": samples.last().copied().unwrap_or(0.0),
                "p95_vs_baseline": (p95 / baseline_p95.max(0.001) * 10.0).round() / 10.0,
            }),
        );
    }
    let report = json!({
        "bench": "dashboard",
        "data": {"stores": stores_n, "days": 365, "sales": sales, "seed_s": (seed_s * 10.0).round() / 10.0},
        "rounds": rounds,
        "pages": results,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
