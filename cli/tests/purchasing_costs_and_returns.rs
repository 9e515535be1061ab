//! Purchasing basics through the CLI and the HTTP API of a real till: goods received
//! with the price paid and the supplier, the average purchase cost (HPP) the stock list
//! reports, a return to the supplier (a supervisor's, like any stock leaving the shop,
//! and never more than is on hand), and the purchase list by SKU and by supplier.

use kasir_testkit::Till;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn stock(till: &Till, sku: &str) -> Value {
    let (status, v) = till.get(&format!("/v1/stock?sku={sku}"));
    assert_eq!(status, 200, "{v}");
    v["stock"][0].clone()
}

#[test]
fn purchasing_costs_suppliers_and_returns() {
    let mut till = Till::with_owner("Toko Sembako Berkah", "T1", "Tini", "1111");
    till.add_product("GULA", "Gulaku 1kg", "17.500", "0", &[]);
    till.add_user("Sari", "supervisor", "3333");
    till.add_user("Ani", "cashier", "2222");

    // From the CLI: rupiah as people write them.
    till.ok(&[
        "stock",
        "receive",
        "--sku",
        "GULA",
        "--qty",
        "10",
        "--cost",
        "14.000",
        "--supplier",
        "CV Maju Jaya",
    ]);
    let refused = till.fails(&[
        "stock", "receive", "--sku", "GULA", "--qty", "1", "--cost", "14,000.5",
    ]);
    assert!(refused.contains("14,000.5"), "{refused}");

    till.start(&[]);
    let ani = till.login("Ani", "2222");
    // A cashier receives goods (a cashier's job) with their cost.
    let receive = json!({"kind": "receive", "sku": "GULA", "qty": 30, "cost": 15_000,
                         "supplier": "PT Manis Sentosa"});
    let (status, v) = till.post_as("/v1/stock/movements", &receive, &ani);
    assert_eq!(status, 201, "{v}");
    // (10 × 14.000 + 30 × 15.000) ÷ 40 = 14.750.
    let level = stock(&till, "GULA");
    assert_eq!(
        (level["on_hand"].as_f64(), level["avg_cost"].as_i64()),
        (Some(40.0), Some(14_750)),
        "{level}"
    );

    // A return to the supplier takes goods out: a supervisor's PIN.
    let back = json!({"kind": "supplier_return", "sku": "GULA", "qty": 4, "cost": 15_000,
                      "supplier": "PT Manis Sentosa", "note": "kemasan bocor"});
    let (status, v) = till.post_as("/v1/stock/movements", &back, &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = back.clone();
    approved["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, v) = till.post_as("/v1/stock/movements", &approved, &ani);
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["delta"], -4.0, "{v}");
    let level = stock(&till, "GULA");
    assert_eq!(level["on_hand"], 36.0);
    assert_eq!(
        level["avg_cost"], 14_750,
        "a return leaves the average paid"
    );
    // Never more back than is on hand; cost and supplier only on purchases; no
    // negative costs.
    let mut too_many = approved.clone();
    too_many["qty"] = json!(37);
    let (status, v) = till.post_as("/v1/stock/movements", &too_many, &ani);
    assert_eq!((status, code(&v)), (409, "conflict"), "{v}");
    let mut adjust = json!({"kind": "adjust", "sku": "GULA", "qty": -1, "cost": 1});
    adjust["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, v) = till.post_as("/v1/stock/movements", &adjust, &ani);
    assert_eq!((status, code(&v)), (400, "invalid_request"), "{v}");
    let mut negative = receive.clone();
    negative["cost"] = json!(-5);
    let (status, v) = till.post_as("/v1/stock/movements", &negative, &ani);
    assert_eq!((status, code(&v)), (400, "invalid_request"), "{v}");
    assert_eq!(stock(&till, "GULA")["on_hand"], 36.0, "nothing partial");

    // The purchase list: newest first, by SKU or supplier, with who received it.
    let (status, v) = till.get_as("/v1/purchases?sku=GULA", &ani);
    assert_eq!(status, 200, "{v}");
    let rows = v["purchases"].as_array().expect("purchases");
    let seen: Vec<(&str, f64, i64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or(""),
                r["qty"].as_f64().unwrap_or(0.0),
                r["cost"].as_i64().unwrap_or(-1),
                r["supplier"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("supplier_return", -4.0, 15_000, "PT Manis Sentosa"),
            ("receive", 30.0, 15_000, "PT Manis Sentosa"),
            ("receive", 10.0, 14_000, "CV Maju Jaya"),
        ]
    );
    assert_eq!(rows[1]["user"], "Ani", "{}", rows[1]);
    let (_, v) = till.get_as("/v1/purchases?supplier=CV%20Maju%20Jaya", &ani);
    assert_eq!(v["purchases"].as_array().map(Vec::len), Some(1), "{v}");
    // Transfers to another outlet: sending is a supervisor's, receiving a cashier's.
    let bogor = "0192f0a0-0000-7000-8000-000000000001";
    let send = json!({"kind": "transfer", "sku": "GULA", "qty": -6, "other_store": bogor});
    let (status, v) = till.post_as("/v1/stock/movements", &send, &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = send.clone();
    approved["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, v) = till.post_as("/v1/stock/movements", &approved, &ani);
    assert_eq!(status, 201, "{v}");
    assert_eq!(stock(&till, "GULA")["on_hand"], 30.0);
    let take = json!({"kind": "transfer", "sku": "GULA", "qty": 2, "other_store": bogor,
                      "transfer_id": "0192f0a0-1111-7000-8000-000000000002"});
    let (status, v) = till.post_as("/v1/stock/movements", &take, &ani);
    assert_eq!(status, 201, "{v}");
    let (status, v) = till.post_as("/v1/stock/movements", &take, &ani);
    assert_eq!((status, code(&v)), (409, "conflict"), "received once: {v}");
    let mut no_slip = take.clone();
    no_slip["transfer_id"] = Value::Null;
    let (status, v) = till.post_as("/v1/stock/movements", &no_slip, &ani);
    assert_eq!((status, code(&v)), (400, "invalid_request"), "{v}");
    let mut stray = receive.clone();
    stray["other_store"] = json!(bogor);
    let (status, v) = till.post_as("/v1/stock/movements", &stray, &ani);
    assert_eq!((status, code(&v)), (400, "invalid_request"), "{v}");
    assert_eq!(stock(&till, "GULA")["on_hand"], 32.0);

    let (status, v) = till.get_as("/v1/purchases?sku=NOPE", &ani);
    assert_eq!((status, code(&v)), (400, "unknown_sku"), "{v}");
}
