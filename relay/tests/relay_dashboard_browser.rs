//! The head-office dashboard in a real headless Chromium against a real `kasir-relay
//! run` and PostgreSQL: an owner logs in with e-mail and password (a wrong one is
//! refused), sees today's sales of two outlets with the totals SQL gives over the
//! materialised tables, downloads the CSV (equal to SQL too) and opens an outlet; an
//! analyst of another tenant cannot reach that outlet by URL (404) nor change a price
//! (403). Screenshots at phone, tablet and laptop sizes.

mod support;

use std::path::PathBuf;

use chrono::{Days, Utc};
use kasir_testkit::browser::Browser;
use serde_json::Value;
use support::{RelayProc, runtime, sql};
use uuid::Uuid;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

fn rupiah(amount: i64) -> String {
    let digits = amount.to_string();
    let mut out = String::from("Rp");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// Sales of `store`: `(days ago, total, refunded, status, payments)`.
fn insert_sales(
    rt: &tokio::runtime::Runtime,
    db: &str,
    tenant: &str,
    store: &str,
    sales: &[(u64, i64, i64, &str, &str)],
) -> Vec<String> {
    let today = (Utc::now() + chrono::TimeDelta::hours(7)).date_naive();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("pg");
        let mut ids = Vec::new();
        for (i, (ago, total, refunded, status, payments)) in sales.iter().enumerate() {
            let id = Uuid::now_v7().to_string();
            ids.push(id.clone());
            let date = today.checked_sub_days(Days::new(*ago)).expect("date");
            sqlx::query(
                "INSERT INTO sales (sale_id, tenant_id, store_id, receipt_no, till_code, cashier,
                     business_date, subtotal, tax, service_charge, rounding, total, status,
                     refunded, payments, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, 0, $8, $9, $10, $11::jsonb,
                         now() - make_interval(days => $12))",
            )
            .bind(&id)
            .bind(Uuid::parse_str(tenant).expect("tenant"))
            .bind(Uuid::parse_str(store).expect("store"))
            .bind(format!("T1-{i:04}"))
            .bind(if i % 2 == 0 { "T1" } else { "T2" })
            .bind(if i % 2 == 0 { "Ani" } else { "Budi" })
            .bind(date)
            .bind(total)
            .bind(status)
            .bind(refunded)
            .bind(payments)
            .bind(*ago as i32)
            .execute(&pool)
            .await
            .expect("insert sale");
        }
        pool.close().await;
        ids
    })
}

/// `(store_id, transactions, sales)` of today per store of `tenant`, straight from SQL.
fn sql_today(rt: &tokio::runtime::Runtime, db: &str, tenant: &str) -> Vec<(String, i64, i64)> {
    let today = (Utc::now() + chrono::TimeDelta::hours(7)).date_naive();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("pg");
        let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
            "SELECT st.store_id, count(s.sale_id)::int8,
                    COALESCE(sum(s.total - s.refunded), 0)::int8
               FROM stores st LEFT JOIN sales s ON s.store_id = st.store_id
                    AND s.business_date = $2 AND s.status <> 'voided'
              WHERE st.tenant_id = $1 GROUP BY st.store_id, st.name ORDER BY st.name, st.store_id",
        )
        .bind(Uuid::parse_str(tenant).expect("tenant"))
        .bind(today)
        .fetch_all(&pool)
        .await
        .expect("totals");
        pool.close().await;
        rows.into_iter()
            .map(|(s, n, t)| (s.to_string(), n, t))
            .collect()
    })
}

fn log_in(b: &Browser, base: &str, email: &str, password: &str) {
    b.goto(&format!("{base}/"));
    b.type_into("#email", email);
    b.type_into("#password", password);
    b.click("button.primary");
}

#[test]
fn relay_dashboard_owner_sees_outlets_and_csv_and_other_tenants_see_nothing() {
    let rt = runtime();
    let db = support::fresh_database("dashboard_browser");
    let relay = RelayProc::start(&db, None);
    let base = relay.http_url();
    let maju = relay.tenant("PT Maju Bersama");
    let lain = relay.tenant("PT Lain Sendiri");
    let store = |tenant: &str, name: &str| {
        relay.cli(&["store", "create", "--tenant", tenant, "--name", name])["store_id"]
            .as_str()
            .expect("store_id")
            .to_owned()
    };
    let (depok, bogor, other) = (
        store(&maju, "Maju Depok"),
        store(&maju, "Maju Bogor"),
        store(&lain, "Lain Pusat"),
    );
    let cash = r#"[{"method":"cash","amount":50000}]"#;
    let qris = r#"[{"method":"qris","amount":25000}]"#;
    let depok_sales = insert_sales(
        &rt,
        &db,
        &maju,
        &depok,
        &[
            (0, 10_000, 0, "completed", cash),
            (0, 25_000, 0, "completed", qris),
            (0, 7_500, 2_500, "refunded", cash),
            (0, 99_000, 0, "voided", cash),
            (1, 12_000, 0, "completed", cash),
            (7, 30_000, 0, "completed", cash),
        ],
    );
    insert_sales(
        &rt,
        &db,
        &maju,
        &bogor,
        &[
            (0, 18_000, 0, "completed", cash),
            (0, 4_000, 0, "completed", qris),
        ],
    );
    insert_sales(
        &rt,
        &db,
        &lain,
        &other,
        &[(0, 1_000_000, 0, "completed", cash)],
    );
    // Depok's lines, products (KOPI's cost known) and stock: KOPI oversold, GULA under
    // the default minimum, TEH above its own minimum of 2, BERAS above its 10.
    let mut rows = vec![
        format!(
            "INSERT INTO sale_lines VALUES ('{}', 1, '{maju}', '{depok}', 'p-kopi', 'KOPI', \
             'Kopi Kapal Api', 2, 5000, 0, 10000)",
            depok_sales[0]
        ),
        format!(
            "INSERT INTO sale_lines VALUES ('{}', 1, '{maju}', '{depok}', 'p-teh', 'TEH', \
             'Teh Botol', 5, 5000, 0, 25000)",
            depok_sales[1]
        ),
    ];
    for (id, sku, name, cost, min, on_hand) in [
        ("p-kopi", "KOPI", "Kopi Kapal Api", "3000", "NULL", "-2"),
        ("p-teh", "TEH", "Teh Botol", "NULL", "2", "3"),
        ("p-gula", "GULA", "Gulaku 1kg", "NULL", "NULL", "4"),
        ("p-beras", "BERAS", "Beras 5kg", "NULL", "10", "50"),
    ] {
        rows.push(format!(
            "INSERT INTO products (tenant_id, store_id, product_id, sku, name, price, unit, \
             active, updated_at_ms, cost, min_stock) VALUES ('{maju}', '{depok}', '{id}', \
             '{sku}', '{name}', 5000, 'pcs', true, 1, {cost}, {min})"
        ));
        rows.push(format!(
            "INSERT INTO stock_levels VALUES ('{maju}', '{depok}', '{sku}', {on_hand})"
        ));
    }
    // Goods received with their purchase cost: KOPI at 3.500 (over the catalog's 3.000),
    // TEH (no catalog cost) 10 at 2.000 and 10 at 3.000, an average of 2.500.
    for (id, sku, qty, cost) in [
        ("rcv-1", "KOPI", 20, 3_500),
        ("rcv-2", "TEH", 10, 2_000),
        ("rcv-3", "TEH", 10, 3_000),
    ] {
        rows.push(format!(
            "INSERT INTO stock_movements (movement_id, tenant_id, store_id, kind, sku, qty, at, \
             cost, supplier) VALUES ('{id}', '{maju}', '{depok}', 'receive', '{sku}', {qty}, \
             now(), {cost}, 'CV Sumber Rejeki')"
        ));
    }
    // Two PPN sales this month (DPP 11/12 of the base) and a voided one, left out.
    for (id, status, dpp, other, tax) in [
        ("ppn-1", "completed", 100_000, 91_667, 11_000),
        ("ppn-2", "completed", 50_000, 45_833, 5_500),
        ("ppn-3", "voided", 70_000, 64_167, 7_700),
    ] {
        rows.push(format!(
            "INSERT INTO sales (sale_id, tenant_id, store_id, receipt_no, till_code, business_date, \
             subtotal, tax, service_charge, rounding, total, status, created_at, dpp, dpp_other, \
             tax_kind) VALUES ('{id}', '{maju}', '{bogor}', '{id}', 'T1', \
             (now() AT TIME ZONE 'Asia/Jakarta')::date, {dpp}, {tax}, 0, 0, {dpp} + {tax}, \
             '{status}', now(), {dpp}, {other}, 'ppn')"
        ));
    }
    // A mixed receipt: exempt beras 70.000, PPN sabun 11.100, PBJT gorengan 11.000 —
    // its PPN joins the PPN row, its PBJT and its exempt goods get rows of their own.
    rows.push(format!(
        "INSERT INTO sales (sale_id, tenant_id, store_id, receipt_no, till_code, business_date, \
         subtotal, tax, service_charge, rounding, total, status, created_at, dpp, dpp_other, \
         tax_kind) VALUES ('mix-1', '{maju}', '{bogor}', 'mix-1', 'T1', \
         (now() AT TIME ZONE 'Asia/Jakarta')::date, 92100, 2100, 0, 0, 92100, 'completed', \
         now(), 20000, 19167, 'mixed')"
    ));
    rows.push(format!(
        "INSERT INTO sale_taxes VALUES \
         ('{maju}', '{bogor}', 'mix-1', 'exempt', 'none', 0, 70000, 70000, 70000, 0), \
         ('{maju}', '{bogor}', 'mix-1', 'standard', 'ppn', 1200, 11100, 10000, 9167, 1100), \
         ('{maju}', '{bogor}', 'mix-1', 'pbjt', 'pbjt', 1000, 11000, 10000, 10000, 1000)"
    ));
    rows.push(format!(
        "INSERT INTO sale_adjustments (adjustment_id, tenant_id, store_id, sale_id, kind, \
         amount, reason, at, cashier, approved_by, till_code) VALUES ('void:{}', '{maju}', \
         '{depok}', '{}', 'void', 0, 'salah input', now(), 'Ani', 'Sari', 'T1')",
        depok_sales[3], depok_sales[3]
    ));
    rows.push(format!(
        "INSERT INTO till_seen (tenant_id, store_id, device_id, till_code, role, last_seen, \
         connected) VALUES ('{maju}', '{depok}', 'dev-t1', 'T1', 'owner', now(), true), \
         ('{maju}', '{depok}', 'dev-t2', 'T2', 'till', now() - interval '8 hours', false)"
    ));
    // T1 set KOPI's price (after concurrent edits: its write won).
    rows.push(format!(
        "UPDATE products SET price_by = 'dev-t1' WHERE store_id = '{depok}' AND sku = 'KOPI'"
    ));
    sql(&rt, &db, &rows);
    for (tenant, email, role) in [
        (&maju, "pemilik@maju.id", "owner"),
        (&lain, "analis@lain.id", "analyst"),
    ] {
        relay.cli(&[
            "user",
            "add",
            "--tenant",
            tenant,
            "--email",
            email,
            "--password",
            "rahasia-kantor-1",
            "--role",
            role,
        ]);
    }

    let b = Browser::start("dashboard", &shots());
    b.goto(&format!("{base}/"));
    b.wait_until("the login form", |b| b.count("#email") == 1);
    b.screenshots("login");
    log_in(&b, &base, "pemilik@maju.id", "salah-sandi-99");
    b.wait_until("the refusal", |b| b.count(".error") == 1);
    assert!(b.text(".error").contains("salah"), "{}", b.text(".error"));

    log_in(&b, &base, "pemilik@maju.id", "rahasia-kantor-1");
    b.wait_until("the overview", |b| b.count("#outlets") == 1);
    let expected = sql_today(&rt, &db, &maju);
    assert_eq!(expected.len(), 2, "{expected:?}");
    let (all_tx, all_net) = expected
        .iter()
        .fold((0, 0), |(n, t), (_, a, b)| (n + a, t + b));
    assert_eq!(
        (all_tx, all_net),
        (
            8,
            10_000 + 25_000 + 5_000 + 18_000 + 4_000 + 111_000 + 55_500 + 92_100
        )
    );
    assert_eq!(b.text("#total-net"), rupiah(all_net));
    assert_eq!(b.text("#total-tx"), all_tx.to_string());
    for (store, tx, net) in &expected {
        let row = format!("#outlets tr[data-store='{store}']");
        assert_eq!(b.text(&format!("{row} td.net")), rupiah(*net), "{store}");
        assert_eq!(b.text(&format!("{row} td.tx")), tx.to_string(), "{store}");
    }
    assert!(
        !b.text("body").contains("Lain Pusat"),
        "another tenant's outlet"
    );
    // Margin at the average paid: KOPI 2 sold for 10.000 at 3.500 (3.000), TEH 5 for
    // 25.000 at 2.500 (12.500).
    assert!(
        b.text("#margin").contains(&rupiah(15_500)),
        "{}",
        b.text("#margin")
    );
    b.screenshots("ringkasan");

    // The CSV equals SQL, row for row.
    let csv = b.execute(
        "return fetch('/ringkasan.csv', {credentials: 'same-origin'}).then(r => r.text())",
    );
    let csv = csv.as_str().expect("csv text");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("store_id,store,transactions_today,sales_today")
    );
    let got: Vec<(String, i64, i64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_owned(),
                f[2].parse().expect("tx"),
                f[3].parse().expect("sales"),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // One outlet: its hours, methods, tills and cashiers.
    b.click(&format!("#outlets tr[data-store='{depok}'] a"));
    b.wait_until("the outlet page", |b| b.count("#outlet-name") == 1);
    assert!(b.text("#outlet-name").contains("Maju Depok"));
    let page = b.text("main");
    for seen in ["QRIS", "Tunai", "T1", "T2", "Ani", "Budi", &rupiah(40_000)] {
        assert!(page.contains(seen), "{seen} missing from the outlet page");
    }
    // Best sellers by revenue, with the margin where the cost is known.
    assert_eq!(
        b.execute("return [...document.querySelectorAll('#top tbody tr')].map(r => r.dataset.sku)"),
        serde_json::json!(["TEH", "KOPI"])
    );
    assert!(
        b.text("#top tr[data-sku='KOPI']").contains(&rupiah(3_000)),
        "margin at the average purchase cost"
    );
    assert!(
        b.text("#top tr[data-sku='TEH']").contains(&rupiah(12_500)),
        "margin from receipts alone"
    );
    // Stock: oversold, then low, then the rest.
    assert_eq!(
        b.execute(
            "return [...document.querySelectorAll('#stock tbody tr')].map(r => r.dataset.sku)"
        ),
        serde_json::json!(["KOPI", "GULA", "BERAS", "TEH"])
    );
    assert!(
        b.text("#stock tr[data-sku='KOPI'] .price-by")
            .contains("T1"),
        "who set the price"
    );
    let stock_csv = b.execute(&format!(
        "return fetch('/toko/{depok}/stok.csv').then(r => r.text())"
    ));
    let statuses: Vec<String> = stock_csv
        .as_str()
        .expect("stock csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{}:{}", f[0], f[4])
        })
        .collect();
    assert_eq!(
        statuses,
        ["KOPI:oversold", "GULA:low", "BERAS:ok", "TEH:ok"]
    );
    // The day's tables as one CSV: its till rows add up to the outlet's sales.
    let day_csv = b.execute(&format!(
        "return fetch('/toko/{depok}/hari.csv').then(r => r.text())"
    ));
    let till_sum: i64 = day_csv
        .as_str()
        .expect("day csv")
        .lines()
        .filter(|l| l.starts_with("till,"))
        .map(|l| {
            l.rsplit(',')
                .next()
                .expect("sales")
                .parse::<i64>()
                .expect("number")
        })
        .sum();
    assert_eq!(till_sum, 40_000);
    b.screenshots("outlet");

    // The owner changes a price from the outlet page; the relay writes it into the
    // catalog (here a product head office created through the API a moment ago).
    let owner_token = relay.cli(&["token", "--tenant", &maju, "--role", "owner"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let created = agent
        .put(&format!("{base}/v1/stores/{depok}/products/SUSU"))
        .header("Authorization", &format!("Bearer {owner_token}"))
        .send_json(serde_json::json!({"name": "Susu UHT 1L", "price": 6000}))
        .expect("PUT");
    assert_eq!(created.status().as_u16(), 200);
    let submit_price = |sku: &str, price: &str| {
        b.type_into("#price-form input[name=sku]", sku);
        b.type_into("#price-form input[name=price]", price);
        b.click_and_load("#price-form button.primary");
        b.text("#price-result")
    };
    let done = submit_price("SUSU", "6.500");
    assert!(done.contains("SUSU") && done.starts_with('✓'), "{done}");
    let price: i64 = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.expect("pg");
        let p = sqlx::query_scalar("SELECT price FROM products WHERE sku = 'SUSU'")
            .fetch_one(&pool)
            .await
            .expect("SUSU");
        pool.close().await;
        p
    });
    assert_eq!(price, 6500);
    let refused = submit_price("TIDAKADA", "1000");
    assert!(refused.contains("tidak ada"), "{refused}");
    // The monthly tax report: PPN's DPP, DPP nilai lain and tax of sales not voided.
    b.goto(&format!("{base}/pajak"));
    b.wait_until("the tax report", |b| b.count("#tax") == 1);
    let row = format!("#tax tr[data-store='{bogor}'][data-kind='ppn']");
    assert_eq!(b.text(&format!("{row} td.dpp")), rupiah(160_000));
    assert_eq!(b.text(&format!("{row} td.tax")), rupiah(17_600));
    assert!(b.text(&row).contains(&rupiah(146_667)), "DPP nilai lain");
    let pbjt = format!("#tax tr[data-store='{bogor}'][data-kind='pbjt']");
    assert_eq!(b.text(&format!("{pbjt} td.tax")), rupiah(1_000));
    let exempt = format!("#tax tr[data-store='{bogor}'][data-kind='exempt']");
    assert_eq!(b.text(&format!("{exempt} td.dpp")), rupiah(70_000));
    assert!(b.text(&format!("{exempt} td.kind")).contains("Dibebaskan"));
    assert_eq!(
        b.count("#tax tbody tr"),
        3,
        "only the PKP outlet, a row per tax"
    );
    b.screenshots("pajak");

    // Batal & retur: who voided, who approved.
    b.goto(&format!("{base}/batal-retur"));
    b.wait_until("the audit page", |b| b.count("#audit") == 1);
    assert_eq!(b.text("#audit tr[data-kind='void'] td.approver"), "Sari");
    assert!(
        b.text("#audit tr[data-kind='void']")
            .contains(&rupiah(99_000))
    );

    // Perangkat: who is connected, who has been silent.
    b.goto(&format!("{base}/perangkat"));
    b.wait_until("the devices page", |b| b.count("#devices") == 1);
    assert!(
        b.text("#devices tr[data-device='dev-t1'] td.status")
            .contains("Tersambung")
    );
    assert_eq!(b.count("#devices tr[data-device='dev-t2'] .badge.warn"), 1);
    assert!(
        b.text("#devices tr[data-device='dev-t1']").contains("2"),
        "T1's sales today"
    );
    b.screenshots("perangkat");
    b.click("header.bar form button");
    b.wait_until("logged out", |b| b.count("#email") == 1);

    // Another tenant's analyst: no outlet of Maju, no price changes.
    log_in(&b, &base, "analis@lain.id", "rahasia-kantor-1");
    b.wait_until("their overview", |b| b.count("#outlets") == 1);
    assert!(b.text("#outlets").contains("Lain Pusat"));
    assert!(!b.text("body").contains("Maju"), "another tenant's outlets");
    b.goto(&format!("{base}/toko/{depok}"));
    b.wait_until("the 404 page", |b| b.text("h1").contains("tidak ditemukan"));
    let status = |script: String| -> i64 {
        let v: Value = b.execute(&script);
        v.as_i64().expect("status")
    };
    assert_eq!(
        status(format!("return fetch('/toko/{depok}').then(r => r.status)")),
        404
    );
    assert_eq!(
        status(format!(
            "return fetch('/toko/{depok}/stok.csv').then(r => r.status)"
        )),
        404
    );
    let put = |store: &str| {
        format!(
            "return fetch('/v1/stores/{store}/products/KOPI', {{method: 'PUT', \
             headers: {{'Content-Type': 'application/json'}}, body: '{{\"price\": 1}}'}}).then(r => r.status)"
        )
    };
    assert_eq!(status(put(&other)), 403, "an analyst changes no price");
    assert_eq!(status(put(&depok)), 403, "nor another tenant's");
    assert_eq!(b.count("script"), 0, "the dashboard runs no script");
}
