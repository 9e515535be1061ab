//! Partial refunds (contract, "People and permissions"): a cashier on till B refunds,
//! offline and with a supervisor's PIN, part of a sale made on till A; after sync the
//! stock, the sale's status and the Z-report are right on A too, a refund of more than
//! is left is refused, and refunding the rest gives back exactly what was paid — tax
//! and cash rounding reversed to the rupiah. Real daemons, real HTTP, real iroh sync.

use kasir_testkit::{Till, wait_for};
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn on_hand(t: &Till, sku: &str) -> f64 {
    let (_, v) = t.get(&format!("/v1/stock?sku={sku}"));
    v["stock"][0]["on_hand"].as_f64().expect("on_hand")
}

#[test]
fn refund_across_tills_offline_then_synced_never_exceeds_the_sale() {
    let mut a = Till::with_owner("Toko Retur", "A1", "Bu Tini", "80808080");
    a.add_user("Budi", "cashier", "2222");
    a.add_user("Sari", "supervisor", "3333");
    // PPN 11% inside the prices and cash rounded to Rp100: the refund must undo both.
    a.ok(&["store", "set", "--tax", "ppn11", "--cash-rounding", "100"]);
    for (sku, price) in [("KOPI", "5050"), ("TEH", "3020")] {
        a.ok(&[
            "product", "add", "--sku", sku, "--name", sku, "--price", price, "--stock", "100",
        ]);
    }
    a.start(&[]);
    let (status, sale) = a.post(
        "/v1/sales",
        &json!({
            "lines": [{"sku": "KOPI", "qty": 3}, {"sku": "TEH", "qty": 2}],
            "payments": [{"method": "cash", "amount": 50_000}],
        }),
    );
    assert_eq!(status, 201, "{sale}");
    let sale_id = sale["sale_id"].as_str().expect("id").to_owned();
    let total = sale["total"].as_i64().expect("total");
    let (_, detail) = a.get(&format!("/v1/sales/{sale_id}"));
    assert_ne!(
        detail["rounding"], 0,
        "the test needs a rounded sale: {detail}"
    );
    assert_ne!(detail["tax"], 0, "{detail}");

    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    wait_for(30, "the sale and the users on B", || {
        let known = b.get(&format!("/v1/sales/{sale_id}")).0 == 200;
        let users = b.get("/v1/users").1["users"].as_array().map_or(0, Vec::len) == 3;
        (known && users).then_some(())
    });

    // The shop's internet and Wi-Fi drop: B works alone.
    a.shutdown();
    b.shutdown();
    b.start(&[]);
    let budi = b.login("Budi", "2222");
    let refund_path = format!("/v1/sales/{sale_id}/refund");
    let one_kopi = json!({"lines": [{"sku": "KOPI", "qty": 1}], "reason": "kemasan rusak"});
    let (status, v) = b.post_as(&refund_path, &one_kopi, &budi);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = one_kopi.clone();
    approved["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, first) = b.post_as(&refund_path, &approved, &budi);
    assert_eq!(status, 201, "{first}");
    let first_amount = first["amount"].as_i64().expect("amount");
    assert!(first["refund_id"].is_string(), "{first}");
    // A third of the KOPI line (Rp15.150 of Rp21.190 before rounding), rounded down to Rp100.
    assert_eq!(first_amount % 100, 0, "a cash refund is rounded: {first}");
    assert_eq!(first_amount, 5_000, "{first}");
    let mut too_many = json!({"lines": [{"sku": "KOPI", "qty": 3}], "reason": "x"});
    too_many["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, v) = b.post_as(&refund_path, &too_many, &budi);
    assert_eq!((status, code(&v)), (409, "refund_exceeds_sale"), "{v}");
    let mut not_sold = json!({"lines": [{"sku": "GULA", "qty": 1}], "reason": "x"});
    not_sold["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, v) = b.post_as(&refund_path, &not_sold, &budi);
    assert_eq!((status, code(&v)), (400, "invalid_request"), "{v}");
    assert_eq!(
        on_hand(&b, "KOPI"),
        98.0,
        "the returned coffee is back on B"
    );

    // Back online: A learns of B's refund.
    b.shutdown();
    a.start(&[]);
    b.start(&[a.peer_arg()]);
    wait_for(60, "B's refund on A", || {
        (a.get(&format!("/v1/sales/{sale_id}")).1["status"] == "partially_refunded").then_some(())
    });
    assert_eq!(on_hand(&a, "KOPI"), 98.0);
    let z = a.get("/v1/reports/z").1;
    assert_eq!(z["store"]["refunds"], first_amount, "{z}");
    assert_eq!(z["store"]["net"], total - first_amount, "{z}");
    let b_code = b.ok(&["status"])["till_code"]
        .as_str()
        .expect("code")
        .to_owned();
    let b_figures = z["tills"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["till_code"] == b_code.as_str()))
        .unwrap_or_else(|| panic!("till {b_code} in {z}"));
    assert_eq!(
        b_figures["refunds"], first_amount,
        "the refund counts on B: {z}"
    );
    assert_eq!(b_figures["by_method"]["cash"], -first_amount, "{z}");

    // On A, knowing B's refund: three more KOPI is more than is left.
    let (status, v) = a.post(
        &refund_path,
        &json!({"lines": [{"sku": "KOPI", "qty": 3}], "reason": "x"}),
    );
    assert_eq!((status, code(&v)), (409, "refund_exceeds_sale"), "{v}");
    // The rest of the sale comes back: exactly what was paid.
    let (status, rest) = a.post(
        &refund_path,
        &json!({"lines": [{"sku": "KOPI", "qty": 2}, {"sku": "TEH", "qty": 2}], "reason": "batal beli"}),
    );
    assert_eq!(status, 201, "{rest}");
    assert_eq!(
        rest["amount"].as_i64().expect("amount") + first_amount,
        total,
        "{rest}"
    );
    assert_eq!(
        a.get(&format!("/v1/sales/{sale_id}")).1["status"],
        "refunded"
    );
    assert_eq!((on_hand(&a, "KOPI"), on_hand(&a, "TEH")), (100.0, 100.0));
    let (status, v) = a.post(
        &format!("/v1/sales/{sale_id}/void"),
        &json!({"reason": "x"}),
    );
    assert_eq!(status, 409, "a refunded sale is not voided as well: {v}");

    // The day nets to nothing: tax and rounding reversed exactly, on both tills.
    wait_for(60, "the same Z-report on both tills", || {
        let (za, zb) = (a.get("/v1/reports/z").1, b.get("/v1/reports/z").1);
        (za == zb).then_some(za)
    });
    let z = a.get("/v1/reports/z").1;
    for field in ["net", "tax", "rounding"] {
        assert_eq!(z["store"][field], 0, "{field}: {z}");
    }
    assert_eq!(z["store"]["refunds"], total, "{z}");
    assert_eq!(z["store"]["refund_count"], 2, "{z}");
    let audit = b.get("/v1/audit").1;
    let refund = audit["entries"]
        .as_array()
        .and_then(|es| {
            es.iter()
                .find(|e| e["action"] == "refund" && e["user"] == "Budi")
        })
        .unwrap_or_else(|| panic!("Budi's refund in {audit}"))
        .clone();
    assert_eq!(refund["approved_by"], "Sari");
}
