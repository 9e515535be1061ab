//! The materialiser's rules against a real PostgreSQL, record by record: a void that
//! arrives before its sale still voids it, replays change nothing, an older product edit
//! never overwrites a newer one, and records PostgreSQL cannot hold are skipped and
//! counted instead of failing the whole transaction (which the till would resend forever).

mod support;

use kasir_crdt::ledger::LedgerRecords;
use kasir_crdt::records::{Payment, Product, Sale, SaleLine, StockLine, Void};
use kasir_crdt::{BusinessDate, DeviceId, DocId, DocKind, Qty, StoreId};
use kasir_relay::materialise::{DocWrite, persist};
use kasir_sync::DocRef;
use sqlx::Row;
use support::runtime;
use uuid::Uuid;

const AT: i64 = 1_795_000_000_000; // 2026-11-18

fn sale(id: &str, sku: &str, qty: i64) -> Sale {
    let price = 5_000;
    let total = price * qty;
    Sale {
        id: id.into(),
        client_id: None,
        receipt_no: format!("T1-261118-{id}"),
        till: "t".into(),
        till_code: "T1".into(),
        cashier: Some("Ani".into()),
        user_id: None,
        approved_by: None,
        created_at_ms: AT,
        business_date: "2026-11-18".into(),
        lines: vec![SaleLine {
            product_id: format!("p-{sku}"),
            sku: sku.into(),
            name: format!("Produk {sku}"),
            qty: Qty(qty * 1000),
            unit_price: price,
            discount: 0,
            tax: 0,
            line_total: total,
            tax_code: None,
            unit: None,
            promo: None,
        }],
        subtotal: total,
        service_charge: 0,
        tax: 0,
        dpp: 0,
        dpp_other: 0,
        tax_rule: Default::default(),
        taxes: Vec::new(),
        seller: None,
        customer_id: None,
        due_date: None,
        customer_name: None,
        rounding: 0,
        total,
        payments: vec![Payment {
            method: "cash".into(),
            amount: total,
            reference: None,
            confirmed_by: None,
        }],
        change: 0,
    }
}

/// Migrates one test's database. The first migration creates a cluster-wide role, so
/// this binary's tests (run in parallel) migrate one at a time.
async fn migrate(pool: &sqlx::PgPool) {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    kasir_relay::db::migrate(pool).await.expect("migrate");
}

fn product(sku: &str, price: i64, updated: i64) -> Product {
    Product {
        id: format!("p-{sku}"),
        sku: sku.into(),
        name: format!("Produk {sku}"),
        barcodes: vec![],
        price,
        cost: None,
        category: None,
        unit: "pcs".into(),
        tax_code: None,
        min_stock: None,
        active: true,
        updated_at_ms: updated,
        units: Vec::new(),
        tiers: Vec::new(),
        promos: Vec::new(),
    }
}

fn write(store: StoreId, records: LedgerRecords, products: Vec<Product>) -> DocWrite {
    let till = DeviceId([3; 32]);
    let date: BusinessDate = "2026-11-18".parse().expect("date");
    DocWrite {
        doc: DocRef {
            id: DocId::ledger(store, till, &date),
            kind: DocKind::Ledger,
            till: Some(till),
            date: Some(date),
        },
        bytes: Vec::new(),
        records,
        products,
        authors: Vec::new(),
        sigs: Vec::new(),
    }
}

#[test]
fn voids_before_sales_replays_stale_products_and_poison_records() {
    let rt = runtime();
    let db = support::fresh_database("materialise_rules");
    let tenant = Uuid::now_v7();
    let store = StoreId(Uuid::now_v7());
    rt.block_on(async {
        let pool = kasir_relay::db::connect(&db).await.expect("pool");
        migrate(&pool).await;
        let count = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .expect(sql)
            }
        };

        // The void (written on another till) arrives first, then the sale.
        let void = Void {
            id: "v1".into(),
            sale_id: "s1".into(),
            reason: "salah input".into(),
            cashier: None,
            approved_by: None,
            at_ms: AT + 60_000,
            lines: vec![StockLine {
                sku: "KOPI".into(),
                qty: Qty(2000),
            }],
            till_code: None,
            payments: Vec::new(),
            reversed: None,
        };
        let first = LedgerRecords {
            voids: vec![void.clone()],
            ..Default::default()
        };
        persist(&pool, tenant, store, &[write(store, first, vec![])], None)
            .await
            .expect("void");
        let second = LedgerRecords {
            sales: vec![sale("s1", "KOPI", 2), sale("s2", "KOPI", 1)],
            ..Default::default()
        };
        let stats = persist(
            &pool,
            tenant,
            store,
            &[write(store, second.clone(), vec![])],
            None,
        )
        .await
        .expect("sales");
        assert_eq!(stats.refused, 0);
        let status: String = sqlx::query_scalar("SELECT status FROM sales WHERE sale_id = 's1'")
            .fetch_one(&pool)
            .await
            .expect("status");
        assert_eq!(
            status, "voided",
            "a void that came first still voids its sale"
        );
        // Stock: −2 −1 sold, +2 back from the void.
        let on_hand: i64 =
            count("SELECT (on_hand * 1000)::int8 FROM stock_levels WHERE sku = 'KOPI'").await;
        assert_eq!(on_hand, -1000);

        // A replay of everything changes nothing (and adds no event).
        let events = count("SELECT count(*) FROM outbox").await;
        persist(&pool, tenant, store, &[write(store, second, vec![])], None)
            .await
            .expect("replay");
        let again = LedgerRecords {
            voids: vec![void],
            ..Default::default()
        };
        persist(&pool, tenant, store, &[write(store, again, vec![])], None)
            .await
            .expect("replay void");
        assert_eq!(count("SELECT count(*) FROM outbox").await, events);
        assert_eq!(count("SELECT count(*) FROM sales").await, 2);
        assert_eq!(
            count("SELECT (on_hand * 1000)::int8 FROM stock_levels WHERE sku = 'KOPI'").await,
            -1000
        );

        // A newer price, then the older edit arriving late: the newer one stays.
        persist(
            &pool,
            tenant,
            store,
            &[write(
                store,
                LedgerRecords::default(),
                vec![product("KOPI", 6_000, AT + 10)],
            )],
            None,
        )
        .await
        .expect("newer product");
        persist(
            &pool,
            tenant,
            store,
            &[write(
                store,
                LedgerRecords::default(),
                vec![product("KOPI", 5_000, AT)],
            )],
            None,
        )
        .await
        .expect("older product");
        assert_eq!(
            count("SELECT price FROM products WHERE sku = 'KOPI'").await,
            6_000
        );

        // Records PostgreSQL cannot hold are skipped; the good one in the batch lands.
        let mut bad_date = sale("s3", "TEH", 1);
        bad_date.business_date = "kemarin".into();
        let mut nul = sale("s4", "TEH", 1);
        nul.lines[0].name = "Teh\0Botol".into();
        let mut huge = sale("s5", "TEH", 1);
        huge.lines[0].qty = Qty(i64::MAX);
        let mut ancient = sale("s6", "TEH", 1);
        ancient.created_at_ms = -5;
        let poison = LedgerRecords {
            sales: vec![bad_date, nul, huge, ancient, sale("s7", "TEH", 3)],
            ..Default::default()
        };
        let stats = persist(
            &pool,
            tenant,
            store,
            &[write(store, poison, vec![product("BAD\0", 1, AT)])],
            None,
        )
        .await
        .expect("a batch with bad records still commits");
        assert_eq!(stats.refused, 5);
        let rows = sqlx::query("SELECT sale_id FROM sales ORDER BY sale_id")
            .fetch_all(&pool)
            .await
            .expect("sales");
        let ids: Vec<String> = rows.iter().map(|r| r.get("sale_id")).collect();
        assert_eq!(ids, vec!["s1", "s2", "s7"]);
        // A cashier's recognition feedback becomes one kasir.ml.v1 event, once.
        let feedback = LedgerRecords {
            feedback: vec![(
                "f1".into(),
                serde_json::json!({"predicted": "TEH", "sku": "KOPI", "model": "abc"}),
            )],
            ..Default::default()
        };
        for _ in 0..2 {
            persist(
                &pool,
                tenant,
                store,
                &[write(store, feedback.clone(), vec![])],
                None,
            )
            .await
            .expect("feedback");
        }
        let payload: String =
            sqlx::query_scalar("SELECT payload::text FROM outbox WHERE topic = 'kasir.ml.v1'")
                .fetch_one(&pool)
                .await
                .expect("one ml event");
        let payload: serde_json::Value = serde_json::from_str(&payload).expect("json");
        assert_eq!(payload["feedback"]["sku"], "KOPI");
        assert_eq!(payload["store_id"], store.to_string());
        assert!(payload["event_id"].is_string());

        // Every event names its store and a distinct id.
        assert_eq!(
            count("SELECT count(DISTINCT event_id) FROM outbox").await,
            count("SELECT count(*) FROM outbox").await
        );
    });
}

/// A receipt taxed under several rules (exempt beras, PPN sabun, PBJT gorengan) reads
/// `mixed` in `sales` and gives one `sale_taxes` row per group, once, however often it
/// is replayed, so head office's tax report keeps PBJT, PPN and exempt goods apart.
#[test]
fn mixed_receipts_materialise_a_row_per_tax_group() {
    use kasir_crdt::money::CashRounding;
    use kasir_crdt::pricing::{CartLine, PricingRules, price_cart};
    use kasir_crdt::tax::{TaxCode, TaxRule};
    let rt = runtime();
    let db = support::fresh_database("materialise_tax_groups");
    let tenant = Uuid::now_v7();
    let store = StoreId(Uuid::now_v7());
    let line = |sku: &str, price: i64, tax_code| CartLine {
        product_id: format!("p-{sku}"),
        sku: sku.into(),
        name: sku.into(),
        qty: Qty(1000),
        unit_price: price,
        discount: 0,
        tax_code,
        unit: None,
        promo: None,
    };
    let rules = PricingRules {
        tax: TaxRule::ppn_12_dpp_11_12(true),
        pbjt_bp: 1000,
        rounding: CashRounding::default(),
    };
    let priced = price_cart(
        vec![
            line("BERAS", 70_000, TaxCode::Exempt),
            line("SABUN", 11_100, TaxCode::Standard),
            line("GORENG", 11_000, TaxCode::Pbjt),
        ],
        &rules,
        vec![],
    )
    .expect("priced");
    let mut mixed = sale("m1", "BERAS", 1);
    mixed.lines = priced.lines;
    mixed.subtotal = priced.subtotal;
    mixed.tax = priced.tax.tax;
    mixed.dpp = priced.tax.dpp;
    mixed.dpp_other = priced.tax.dpp_other;
    mixed.tax_rule = rules.tax;
    mixed.taxes = priced.taxes;
    mixed.total = priced.total;
    mixed.payments = priced.payments;
    rt.block_on(async {
        let pool = kasir_relay::db::connect(&db).await.expect("pool");
        migrate(&pool).await;
        for _ in 0..2 {
            let records = LedgerRecords {
                sales: vec![mixed.clone()],
                ..Default::default()
            };
            persist(&pool, tenant, store, &[write(store, records, vec![])], None)
                .await
                .expect("persist");
        }
        let kind: String = sqlx::query_scalar("SELECT tax_kind FROM sales WHERE sale_id = 'm1'")
            .fetch_one(&pool)
            .await
            .expect("sale");
        assert_eq!(kind, "mixed");
        let groups: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT code, tax_kind, base, dpp, dpp_other, tax FROM sale_taxes
              WHERE sale_id = 'm1' ORDER BY code",
        )
        .fetch_all(&pool)
        .await
        .expect("groups");
        assert_eq!(
            groups,
            vec![
                ("exempt".into(), "none".into(), 70_000, 70_000, 70_000, 0),
                ("pbjt".into(), "pbjt".into(), 11_000, 10_000, 10_000, 1_000),
                (
                    "standard".into(),
                    "ppn".into(),
                    11_100,
                    10_000,
                    9_167,
                    1_100
                ),
            ]
        );
    });
}

#[test]
fn receipts_and_supplier_returns_keep_cost_and_supplier() {
    use kasir_crdt::records::{MovementKind, StockMovement};
    let rt = runtime();
    let db = support::fresh_database("materialise_purchases");
    let tenant = Uuid::now_v7();
    let store = StoreId(Uuid::now_v7());
    let movement = |id: &str, kind, qty: i64, cost: Option<i64>, supplier: &str| StockMovement {
        id: id.into(),
        kind,
        sku: "GULA".into(),
        qty: Qty(qty * 1000),
        counted: None,
        other_store: None,
        note: None,
        at_ms: AT,
        user: Some("Sari".into()),
        approved_by: None,
        cost,
        supplier: Some(supplier.into()),
        transfer_id: None,
    };
    rt.block_on(async {
        let pool = kasir_relay::db::connect(&db).await.expect("pool");
        migrate(&pool).await;
        let records = LedgerRecords {
            movements: vec![
                movement("m1", MovementKind::Receive, 10, Some(14_000), "CV Maju"),
                movement("m2", MovementKind::Receive, 30, Some(15_000), "PT Manis"),
                movement(
                    "m3",
                    MovementKind::SupplierReturn,
                    -4,
                    Some(15_000),
                    "PT Manis",
                ),
                // A supplier name PostgreSQL cannot hold: skipped and counted.
                movement("m4", MovementKind::Receive, 1, Some(1), "bad\0name"),
            ],
            ..Default::default()
        };
        let stats = persist(&pool, tenant, store, &[write(store, records, vec![])], None)
            .await
            .expect("persist");
        assert_eq!(stats.refused, 1);
        let rows: Vec<(String, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT movement_id, kind, cost, supplier FROM stock_movements ORDER BY movement_id",
        )
        .fetch_all(&pool)
        .await
        .expect("movements");
        assert_eq!(
            rows,
            vec![
                (
                    "m1".into(),
                    "receive".into(),
                    Some(14_000),
                    Some("CV Maju".into())
                ),
                (
                    "m2".into(),
                    "receive".into(),
                    Some(15_000),
                    Some("PT Manis".into())
                ),
                (
                    "m3".into(),
                    "supplier_return".into(),
                    Some(15_000),
                    Some("PT Manis".into())
                ),
            ]
        );
        let level: f64 = sqlx::query_scalar("SELECT on_hand::float8 FROM stock_levels")
            .fetch_one(&pool)
            .await
            .expect("level");
        assert_eq!(level, 36.0);
        // (10 × 14.000 + 30 × 15.000) ÷ 40 = 14.750; a return does not move the average.
        // A sale of one bal (10 kg): the line keeps its unit, stock loses ten.
        let mut bal = sale("s-bal", "GULA", 1);
        bal.lines[0].unit = Some(kasir_crdt::records::LineUnit {
            name: "bal".into(),
            per: Qty(10_000),
        });
        let records = LedgerRecords {
            sales: vec![bal],
            ..Default::default()
        };
        persist(&pool, tenant, store, &[write(store, records, vec![])], None)
            .await
            .expect("sale");
        let line: (f64, String, f64) = sqlx::query_as(
            "SELECT qty::float8, unit, stock_qty::float8 FROM sale_lines WHERE sale_id = 's-bal'",
        )
        .fetch_one(&pool)
        .await
        .expect("line");
        assert_eq!(line, (1.0, "bal".into(), 10.0));
        let level: f64 = sqlx::query_scalar("SELECT on_hand::float8 FROM stock_levels")
            .fetch_one(&pool)
            .await
            .expect("level");
        assert_eq!(level, 26.0);
        let avg: i64 = sqlx::query_scalar("SELECT avg_cost FROM product_costs WHERE sku = 'GULA'")
            .fetch_one(&pool)
            .await
            .expect("avg");
        assert_eq!(avg, 14_750);
    });
}
