//! The head-office API over real HTTP against a real PostgreSQL: two tenants, each with
//! stores, sales, lines, products, stock and outbox rows inserted by hand. Tenant A's
//! token gets exact numbers for A's stores and 404 for B's; requests without a valid token
//! are 401; and row-level security alone (a raw `kasir_api` session, no API) hides every
//! row of the other tenant in every materialised table.

mod support;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kasir_relay::api::{self, ApiState};
use kasir_relay::auth::{self, ApiRole};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const SECRET: &[u8] = b"relay-api-tenancy-test-secret-0123456789";

/// Every table the `tenant_isolation` policy covers.
const TENANT_TABLES: [&str; 8] = [
    "tenants",
    "stores",
    "sales",
    "sale_lines",
    "stock_movements",
    "products",
    "stock_levels",
    "outbox",
];

struct Fixture {
    tenant_a: Uuid,
    tenant_b: Uuid,
    store_a: Uuid,
    store_a2: Uuid,
    store_b: Uuid,
}

/// Inserts both tenants' rows as the migrating role (which sees every tenant).
async fn seed(pool: &PgPool) -> Result<Fixture> {
    let f = Fixture {
        tenant_a: Uuid::now_v7(),
        tenant_b: Uuid::now_v7(),
        store_a: Uuid::now_v7(),
        store_a2: Uuid::now_v7(),
        store_b: Uuid::now_v7(),
    };
    let (ta, tb, sa, sa2, sb) = (f.tenant_a, f.tenant_b, f.store_a, f.store_a2, f.store_b);
    let sql = format!(
        r#"
        INSERT INTO tenants (tenant_id, name) VALUES ('{ta}', 'Toko Maju'), ('{tb}', 'Warung Jaya');
        INSERT INTO stores (store_id, tenant_id, name, created_at) VALUES
            ('{sa}',  '{ta}', 'Maju Pusat',  '2026-01-01T00:00:00Z'),
            ('{sa2}', '{ta}', 'Maju Cabang', '2026-01-02T00:00:00Z'),
            ('{sb}',  '{tb}', 'Jaya Satu',   '2026-01-01T12:00:00Z');

        INSERT INTO sales (sale_id, tenant_id, store_id, receipt_no, till_code, business_date,
                           subtotal, tax, service_charge, rounding, total, status, refunded, created_at)
        VALUES
            ('a1', '{ta}', '{sa}', 'K1-260301-1', 'K1', '2026-03-01', 27027, 2973, 0, 0, 30000, 'completed', 0,     '2026-03-01T02:00:00Z'),
            ('a2', '{ta}', '{sa}', 'K1-260301-2', 'K1', '2026-03-01', 45045, 4955, 0, 0, 50000, 'voided',    0,     '2026-03-01T03:00:00Z'),
            ('a3', '{ta}', '{sa}', 'K1-260302-1', 'K1', '2026-03-02', 40541, 4459, 0, 0, 45000, 'refunded',  15000, '2026-03-02T04:00:00Z'),
            ('a4', '{ta}', '{sa}', 'K2-260302-1', 'K2', '2026-03-02', 10811, 1189, 0, 0, 12000, 'completed', 0,     '2026-03-02T05:00:00Z'),
            ('b1', '{tb}', '{sb}', 'J1-260301-1', 'J1', '2026-03-01', 900000, 99000, 0, 0, 999000, 'completed', 0,  '2026-03-03T00:00:00Z');

        INSERT INTO sale_lines (sale_id, line_no, tenant_id, store_id, product_id, sku, name,
                                qty, unit_price, discount, line_total)
        VALUES
            ('a1', 0, '{ta}', '{sa}', 'p-kopi', 'KOPI', 'Kopi Susu', 2,    10000, 0, 20000),
            ('a1', 1, '{ta}', '{sa}', 'p-teh',  'TEH',  'Teh Manis', 1,    10000, 0, 10000),
            ('a2', 0, '{ta}', '{sa}', 'p-gula', 'GULA', 'Gula Pasir', 5,   10000, 0, 50000),
            ('a3', 0, '{ta}', '{sa}', 'p-kopi', 'KOPI', 'Kopi Susu', 1.5,  10000, 0, 15000),
            ('a3', 1, '{ta}', '{sa}', 'p-roti', 'ROTI', 'Roti Bakar', 3,   10000, 0, 30000),
            ('a4', 0, '{ta}', '{sa}', 'p-teh',  'TEH',  'Teh Manis', 1.25, 9600,  0, 12000),
            ('b1', 0, '{tb}', '{sb}', 'p-kopi', 'KOPI', 'Kopi B',    100,  9990,  0, 999000);

        INSERT INTO products (tenant_id, store_id, product_id, sku, name, price, unit, active, updated_at_ms)
        VALUES
            ('{ta}', '{sa}', 'p-kopi', 'KOPI', 'Kopi Susu',  10000, 'pcs', true,  1),
            ('{ta}', '{sa}', 'p-teh',  'TEH',  'Teh Manis',  10000, 'pcs', true,  1),
            ('{ta}', '{sa}', 'p-roti', 'ROTI', 'Roti Bakar', 10000, 'pcs', true,  1),
            ('{ta}', '{sa}', 'p-gula', 'GULA', 'Gula Pasir', 10000, 'pcs', false, 1),
            ('{tb}', '{sb}', 'p-kopi', 'KOPI', 'Kopi B',      9990, 'pcs', true,  1),
            ('{tb}', '{sb}', 'p-sabun', 'SABUN', 'Sabun B',   5000, 'pcs', true,  1);

        INSERT INTO stock_levels (tenant_id, store_id, sku, on_hand) VALUES
            ('{ta}', '{sa}', 'KOPI', -2.5),
            ('{ta}', '{sa}', 'TEH',  3),
            ('{ta}', '{sa}', 'ROTI', 40),
            ('{ta}', '{sa}', 'GULA', 0),
            ('{ta}', '{sa}', 'ES',   1),
            ('{tb}', '{sb}', 'KOPI', -100),
            ('{tb}', '{sb}', 'SABUN', 2);

        INSERT INTO stock_movements (movement_id, tenant_id, store_id, kind, sku, qty, at) VALUES
            ('sale:a1:0', '{ta}', '{sa}', 'sale', 'KOPI', -2, '2026-03-01T02:00:00Z'),
            ('recv:1',    '{ta}', '{sa}', 'receive', 'ROTI', 43, '2026-02-28T02:00:00Z'),
            ('sale:b1:0', '{tb}', '{sb}', 'sale', 'KOPI', -100, '2026-03-03T00:00:00Z');

        INSERT INTO outbox (event_id, tenant_id, store_id, topic, payload, created_at, published_at) VALUES
            ('{e1}', '{ta}', '{sa}', 'kasir.sales.v1', '{{}}', clock_timestamp() - interval '120 seconds', NULL),
            ('{e2}', '{ta}', '{sa}', 'kasir.sales.v1', '{{}}', clock_timestamp(), clock_timestamp()),
            ('{e3}', '{tb}', '{sb}', 'kasir.sales.v1', '{{}}', clock_timestamp() - interval '60 seconds', NULL);
        "#,
        e1 = Uuid::now_v7(),
        e2 = Uuid::now_v7(),
        e3 = Uuid::now_v7(),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .context("seeding")?;
    Ok(f)
}

/// One GET over real HTTP; 4xx and 5xx are answers, not errors.
async fn get(base: &str, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    let url = format!("{base}{path}");
    let auth = token.map(|t| format!("Bearer {t}"));
    tokio::task::spawn_blocking(move || -> Result<(u16, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut req = agent.get(&url);
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string()?;
        Ok((status, body))
    })
    .await?
}

async fn get_json(base: &str, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
    let (status, body) = get(base, path, token).await?;
    let v: Value =
        serde_json::from_str(&body).with_context(|| format!("GET {path}: not JSON: {body}"))?;
    Ok((status, v))
}

/// Asserts `status` and the contract's error shape with `code`.
async fn expect_error(
    base: &str,
    path: &str,
    token: Option<&str>,
    status: u16,
    code: &str,
) -> Result<()> {
    let (got, v) = get_json(base, path, token).await?;
    ensure!(
        got == status,
        "GET {path}: status {got}, expected {status}: {v}"
    );
    ensure!(
        v["error"]["code"] == code,
        "GET {path}: expected code {code}: {v}"
    );
    ensure!(
        v["error"]["message"].is_string(),
        "GET {path}: no message: {v}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_api_isolates_tenants() -> Result<()> {
    let url = support::fresh_database("api_tenancy");
    let pool = PgPool::connect(&url).await?;
    sqlx::migrate!("../migrations").run(&pool).await?;
    let f = seed(&pool).await?;

    let state = ApiState::new(pool.clone(), SECRET.to_vec());
    // The process's registry takes other series too.
    let extra = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    extra.set(42);
    state
        .metrics
        .register(|r| r.register("kasir_relay_test_extra", "A test series", extra));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, api::router(state)).await });

    let hour = Duration::from_secs(3600);
    let token_a = auth::mint(SECRET, f.tenant_a, ApiRole::Analyst, hour)?;
    let token_b = auth::mint(SECRET, f.tenant_b, ApiRole::Owner, hour)?;
    let (a, b) = (Some(token_a.as_str()), Some(token_b.as_str()));
    let (sa, sb) = (f.store_a, f.store_b);
    let range = "from=2026-03-01&to=2026-03-03";

    // Public endpoints.
    let (status, v) = get_json(&base, "/v1/health", None).await?;
    assert_eq!((status, v), (200, json!({"status": "ok"})));
    let (status, text) = get(&base, "/metrics", None).await?;
    assert_eq!(status, 200);
    assert!(text.contains("kasir_relay_db_up 1\n"), "{text}");
    assert!(text.contains("kasir_relay_outbox_pending 2\n"), "{text}");
    assert!(
        text.contains("kasir_relay_sales_materialised_total 5\n"),
        "{text}"
    );
    assert!(text.contains("kasir_relay_stores 3\n"), "{text}");
    assert!(text.contains("kasir_relay_test_extra 42\n"), "{text}");
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("kasir_relay_outbox_oldest_pending_age_seconds "))
        .context("no outbox age")?
        .parse()?;
    assert!((120.0..3600.0).contains(&age), "oldest pending age {age}");

    // Every authenticated endpoint, on the caller's own store and on the other tenant's.
    let endpoints = [
        format!("/v1/reports/daily-sales?{range}&store="),
        format!("/v1/reports/top-products?{range}&store="),
        "/v1/stock?store=".to_owned(),
        "/v1/alerts?store=".to_owned(),
    ];
    let missing = Uuid::now_v7();
    for e in &endpoints {
        let (status, v) = get_json(&base, &format!("{e}{sa}"), a).await?;
        assert_eq!(status, 200, "{e}{sa}: {v}");
        let (status, v) = get_json(&base, &format!("{e}{sb}"), b).await?;
        assert_eq!(status, 200, "{e}{sb}: {v}");
        // The other tenant's store and a store that does not exist answer alike.
        expect_error(&base, &format!("{e}{sb}"), a, 404, "store_not_found").await?;
        expect_error(&base, &format!("{e}{sa}"), b, 404, "store_not_found").await?;
        expect_error(&base, &format!("{e}{missing}"), a, 404, "store_not_found").await?;
        // No token, a malformed one, one of another secret: 401 before anything else.
        expect_error(&base, &format!("{e}{sa}"), None, 401, "unauthorized").await?;
        expect_error(
            &base,
            &format!("{e}{sa}"),
            Some("garbage"),
            401,
            "unauthorized",
        )
        .await?;
        let forged = auth::mint(
            b"some-other-relay-secret-0123456789abcdef",
            f.tenant_a,
            ApiRole::Owner,
            hour,
        )?;
        expect_error(
            &base,
            &format!("{e}{sb}"),
            Some(&forged),
            401,
            "unauthorized",
        )
        .await?;
        // Bad parameters: 400.
        expect_error(&base, &format!("{e}not-a-uuid"), a, 400, "invalid_request").await?;
        expect_error(
            &base,
            e.trim_end_matches("store=").trim_end_matches(['&', '?']),
            a,
            400,
            "invalid_request",
        )
        .await?;
    }
    expect_error(&base, "/v1/stores", None, 401, "unauthorized").await?;
    expect_error(&base, "/v1/stores", Some("garbage"), 401, "unauthorized").await?;

    // Daily sales of A: voided sales count apart; the refund comes off net.
    let (_, v) = get_json(
        &base,
        &format!("/v1/reports/daily-sales?{range}&store={sa}"),
        a,
    )
    .await?;
    assert_eq!(
        v,
        json!({
            "store_id": sa, "from": "2026-03-01", "to": "2026-03-03",
            "days": [
                {"date": "2026-03-01", "sales": 1, "voided": 1, "gross": 30000, "refunded": 0, "net": 30000, "tax": 2973},
                {"date": "2026-03-02", "sales": 2, "voided": 0, "gross": 57000, "refunded": 15000, "net": 42000, "tax": 5648},
                {"date": "2026-03-03", "sales": 0, "voided": 0, "gross": 0, "refunded": 0, "net": 0, "tax": 0},
            ]
        })
    );
    let (_, v) = get_json(
        &base,
        &format!("/v1/reports/daily-sales?from=2026-03-01&to=2026-03-01&store={sb}"),
        b,
    )
    .await?;
    assert_eq!(
        v["days"],
        json!([{"date": "2026-03-01", "sales": 1, "voided": 0, "gross": 999000, "refunded": 0, "net": 999000, "tax": 99000}])
    );
    expect_error(
        &base,
        &format!("/v1/reports/daily-sales?from=2026-03-05&to=2026-03-01&store={sa}"),
        a,
        400,
        "invalid_request",
    )
    .await?;
    expect_error(
        &base,
        &format!("/v1/reports/daily-sales?from=yesterday&store={sa}"),
        a,
        400,
        "invalid_request",
    )
    .await?;
    // Default range: the last 30 days.
    let (status, v) = get_json(&base, &format!("/v1/reports/daily-sales?store={sa}"), a).await?;
    assert_eq!(status, 200);
    assert_eq!(v["days"].as_array().map(Vec::len), Some(30));

    // Top products of A by revenue; the voided sale's GULA is not there, B's KOPI neither.
    let (_, v) = get_json(
        &base,
        &format!("/v1/reports/top-products?{range}&store={sa}"),
        a,
    )
    .await?;
    assert_eq!(
        v["products"],
        json!([
            {"sku": "KOPI", "name": "Kopi Susu", "qty": 3.5, "revenue": 35000},
            {"sku": "ROTI", "name": "Roti Bakar", "qty": 3.0, "revenue": 30000},
            {"sku": "TEH", "name": "Teh Manis", "qty": 2.25, "revenue": 22000},
        ])
    );
    let (_, v) = get_json(
        &base,
        &format!("/v1/reports/top-products?{range}&store={sa}&limit=1"),
        a,
    )
    .await?;
    assert_eq!(v["products"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["products"][0]["sku"], "KOPI");
    for bad in ["0", "101", "ten"] {
        expect_error(
            &base,
            &format!("/v1/reports/top-products?store={sa}&limit={bad}"),
            a,
            400,
            "invalid_request",
        )
        .await?;
    }

    // Stock of A, by SKU.
    let (_, v) = get_json(&base, &format!("/v1/stock?store={sa}"), a).await?;
    assert_eq!(
        v,
        json!({"store_id": sa, "stock": [
            {"sku": "ES", "name": null, "on_hand": 1.0, "oversold": false},
            {"sku": "GULA", "name": "Gula Pasir", "on_hand": 0.0, "oversold": false},
            {"sku": "KOPI", "name": "Kopi Susu", "on_hand": -2.5, "oversold": true},
            {"sku": "ROTI", "name": "Roti Bakar", "on_hand": 40.0, "oversold": false},
            {"sku": "TEH", "name": "Teh Manis", "on_hand": 3.0, "oversold": false},
        ]})
    );

    // Alerts of A: oversold KOPI; low ES and TEH; GULA is empty but no longer sold.
    let (_, v) = get_json(&base, &format!("/v1/alerts?store={sa}"), a).await?;
    assert_eq!(
        v,
        json!({"store_id": sa, "low": 5.0, "alerts": [
            {"kind": "oversold", "sku": "KOPI", "name": "Kopi Susu", "on_hand": -2.5},
            {"kind": "low_stock", "sku": "ES", "name": null, "on_hand": 1.0},
            {"kind": "low_stock", "sku": "TEH", "name": "Teh Manis", "on_hand": 3.0},
        ]})
    );
    let (_, v) = get_json(&base, &format!("/v1/alerts?store={sa}&low=0.5"), a).await?;
    assert_eq!(
        v["alerts"],
        json!([{"kind": "oversold", "sku": "KOPI", "name": "Kopi Susu", "on_hand": -2.5}])
    );
    expect_error(
        &base,
        &format!("/v1/alerts?store={sa}&low=-1"),
        a,
        400,
        "invalid_request",
    )
    .await?;
    let (_, v) = get_json(&base, &format!("/v1/alerts?store={sb}"), b).await?;
    assert_eq!(
        v["alerts"],
        json!([
            {"kind": "oversold", "sku": "KOPI", "name": "Kopi B", "on_hand": -100.0},
            {"kind": "low_stock", "sku": "SABUN", "name": "Sabun B", "on_hand": 2.0},
        ])
    );

    // Stores: only the caller's. The list query has no tenant predicate: RLS decides.
    let (status, v) = get_json(&base, "/v1/stores?date=2026-03-02", a).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"tenant_id": f.tenant_a, "date": "2026-03-02", "stores": [
            {"store_id": sa, "name": "Maju Pusat", "created_at": "2026-01-01T00:00:00Z",
             "last_sale_at": "2026-03-02T05:00:00Z", "sales_today": 2},
            {"store_id": f.store_a2, "name": "Maju Cabang", "created_at": "2026-01-02T00:00:00Z",
             "last_sale_at": null, "sales_today": 0},
        ]})
    );
    let (_, v) = get_json(&base, "/v1/stores?date=2026-03-01", b).await?;
    assert_eq!(
        v["stores"],
        json!([{"store_id": sb, "name": "Jaya Satu", "created_at": "2026-01-01T12:00:00Z",
                "last_sale_at": "2026-03-03T00:00:00Z", "sales_today": 1}])
    );
    // A valid token of a tenant with nothing: no stores, and A's store is 404.
    let nobody = auth::mint(SECRET, Uuid::now_v7(), ApiRole::Owner, hour)?;
    let (_, v) = get_json(&base, "/v1/stores", Some(&nobody)).await?;
    assert_eq!(v["stores"], json!([]));
    expect_error(
        &base,
        &format!("/v1/stock?store={sa}"),
        Some(&nobody),
        404,
        "store_not_found",
    )
    .await?;
    expect_error(
        &base,
        "/v1/stores?date=03-02-2026",
        a,
        400,
        "invalid_request",
    )
    .await?;
    expect_error(&base, "/v1/nothing", a, 404, "not_found").await?;

    server.abort();
    rls_by_hand(&url, &pool, &f).await?;
    Ok(())
}

/// Row-level security on its own: a raw session as `kasir_api`, no API involved.
async fn rls_by_hand(url: &str, pool: &PgPool, f: &Fixture) -> Result<()> {
    // What each tenant owns, counted as the relay (which sees everything).
    let mut own_a = Vec::new();
    for t in TENANT_TABLES {
        let sql = format!("SELECT count(*) FROM {t} WHERE tenant_id = $1");
        let a: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(f.tenant_a)
            .fetch_one(pool)
            .await?;
        let b: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(f.tenant_b)
            .fetch_one(pool)
            .await?;
        assert!(
            a > 0 && b > 0,
            "{t}: the fixture must give both tenants rows ({a}, {b})"
        );
        own_a.push(a);
    }

    let mut conn = PgConnection::connect(url).await?;
    sqlx::raw_sql("SET ROLE kasir_api")
        .execute(&mut conn)
        .await?;
    // No tenant set at all: nothing is visible.
    for t in TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(n, 0, "{t}: visible with no tenant set");
    }
    // Tenant A: all of A, none of B, with or without a WHERE.
    sqlx::query("SELECT set_config('kasir.tenant_id', $1, false)")
        .bind(f.tenant_a.to_string())
        .execute(&mut conn)
        .await?;
    for (t, own) in TENANT_TABLES.into_iter().zip(&own_a) {
        let of_b: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {t} WHERE tenant_id = $1"
        )))
        .bind(f.tenant_b)
        .fetch_one(&mut conn)
        .await?;
        assert_eq!(of_b, 0, "{t}: tenant A sees rows of B");
        let all: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(all, *own, "{t}: tenant A sees {all} rows, owns {own}");
        let foreign: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {t} WHERE tenant_id <> $1"
        )))
        .bind(f.tenant_a)
        .fetch_one(&mut conn)
        .await?;
        assert_eq!(foreign, 0, "{t}: tenant A sees rows of another tenant");
    }
    // B's store by id: absent, as the API's 404 relies on.
    let found: Option<Uuid> = sqlx::query_scalar("SELECT store_id FROM stores WHERE store_id = $1")
        .bind(f.store_b)
        .fetch_optional(&mut conn)
        .await?;
    assert_eq!(found, None);
    // The API role only reads.
    let write = sqlx::query("UPDATE stock_levels SET on_hand = 0")
        .execute(&mut conn)
        .await;
    assert!(write.is_err(), "kasir_api could write");
    // Cleared back to empty: nothing again.
    sqlx::query("SELECT set_config('kasir.tenant_id', '', false)")
        .execute(&mut conn)
        .await?;
    for t in TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(n, 0, "{t}: visible with the tenant cleared");
    }
    conn.close().await?;
    Ok(())
}
