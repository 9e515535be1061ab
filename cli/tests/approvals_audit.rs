//! Approvals beyond the void (contract, "People and permissions"): a cashier's discount
//! above the store's threshold, a price override, a stock adjustment, a reprint and
//! opening the drawer without a sale need a supervisor's PIN, and every record names its cashier and its approver; the
//! audit trail lists them with logins and failed logins. The shift, report and audit
//! commands work with the daemon running and without it. Real daemon, real HTTP.

use kasir_testkit::{Till, free_port};
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn sale_line(discount: i64, price: Option<i64>) -> Value {
    let mut line = json!({"sku": "KOPI", "qty": 1, "discount": discount});
    if let Some(p) = price {
        line["price"] = json!(p);
    }
    json!({"lines": [line]})
}

#[test]
fn approvals_audit_big_discounts_overrides_adjustments_and_reprints_need_a_supervisor() {
    let mut t = Till::with_owner("Toko Aman", "S1", "Pak Joko", "55667788");
    t.add_user("Ani", "cashier", "1111");
    t.add_user("Sari", "supervisor", "3333");
    t.ok(&[
        "product", "add", "--sku", "KOPI", "--name", "Kopi", "--price", "10000", "--stock", "50",
    ]);
    // A printer that is not there: print jobs queue and wait for it.
    std::fs::write(
        t.path().join("printer.json"),
        json!({"uri": format!("tcp://127.0.0.1:{}", free_port()), "attempts": 1}).to_string(),
    )
    .expect("printer.json");
    t.start(&[]);
    let (status, v) = t.running().post_as(
        "/v1/sessions",
        json!({"name": "Ani", "pin": "9999"}).to_string().as_bytes(),
        "",
    );
    assert_eq!((status, code(&v)), (401, "bad_pin"));
    let ani = t.login("Ani", "1111");
    let sari = json!({"name": "Sari", "pin": "3333"});

    // 10% off is within the default threshold; 20% needs Sari.
    let (status, v) = t.post_as("/v1/sales", &sale_line(1_000, None), &ani);
    assert_eq!(status, 201, "{v}");
    let (status, v) = t.post_as("/v1/sales", &sale_line(2_000, None), &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = sale_line(2_000, None);
    approved["approval"] = sari.clone();
    let (status, v) = t.post_as("/v1/sales", &approved, &ani);
    assert_eq!(status, 201, "{v}");
    let (_, sale) = t.get(&format!("/v1/sales/{}", v["sale_id"].as_str().expect("id")));
    assert_eq!(
        (&sale["cashier"], &sale["approved_by"]),
        (&json!("Ani"), &json!("Sari")),
        "{sale}"
    );
    assert!(sale["user_id"].is_string(), "{sale}");
    assert_eq!(sale["total"], 8_000);

    // Another price than the catalog's.
    let (status, v) = t.post_as("/v1/sales", &sale_line(0, Some(7_500)), &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = sale_line(0, Some(7_500));
    approved["approval"] = sari.clone();
    let (status, v) = t.post_as("/v1/sales", &approved, &ani);
    assert_eq!(status, 201, "{v}");
    let reprinted_sale = v["sale_id"].as_str().expect("id").to_owned();
    let (_, sale) = t.get(&format!("/v1/sales/{reprinted_sale}"));
    assert_eq!(sale["lines"][0]["unit_price"], 7_500, "{sale}");
    assert_eq!(sale["approved_by"], "Sari");

    // The owner raises the threshold: 20% is now the cashier's to give.
    let (status, v) = t.post("/v1/store", &json!({"discount_approval_percent": 25}));
    assert_eq!(status, 200, "{v}");
    let (status, v) = t.post_as("/v1/sales", &sale_line(2_000, None), &ani);
    assert_eq!(status, 201, "{v}");

    // Receiving goods is a cashier's job; correcting stock is not.
    let receive = json!({"kind": "receive", "sku": "KOPI", "qty": 5});
    assert_eq!(t.post_as("/v1/stock/movements", &receive, &ani).0, 201);
    let adjust = json!({"kind": "adjust", "sku": "KOPI", "qty": -2, "note": "pecah"});
    let (status, v) = t.post_as("/v1/stock/movements", &adjust, &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = adjust.clone();
    approved["approval"] = sari.clone();
    assert_eq!(t.post_as("/v1/stock/movements", &approved, &ani).0, 201);
    let opname = json!({"kind": "opname", "sku": "KOPI", "counted": 40});
    let (status, _) = t.post_as("/v1/stock/movements", &opname, &ani);
    assert_eq!(status, 403, "a stocktake too");

    // The first print is the cashier's; a second struk needs Sari.
    let print = format!("/v1/sales/{reprinted_sale}/print");
    assert_eq!(t.post_as(&print, &json!({}), &ani).0, 202);
    let (status, v) = t.post_as(&print, &json!({"reprint": true}), &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let (status, v) = t.post_as(&print, &json!({"reprint": true, "approval": sari}), &ani);
    assert_eq!(status, 202, "{v}");

    // Opening the drawer without a sale: a supervisor's, with a reason.
    let drawer = json!({"reason": "tukar uang receh"});
    let (status, v) = t.post_as("/v1/drawer/open", &drawer, &ani);
    assert_eq!((status, code(&v)), (403, "approval_required"), "{v}");
    let mut approved = drawer.clone();
    approved["approval"] = json!({"name": "Sari", "pin": "3333"});
    let (status, v) = t.post_as("/v1/drawer/open", &approved, &ani);
    assert_eq!(status, 202, "{v}");
    let (status, _) = t.post_as("/v1/drawer/open", &json!({"reason": " "}), &ani);
    assert_eq!(status, 400, "a reason is required");

    // A price change by the owner's device.
    let (status, v) = t.post(
        "/v1/products",
        &json!({"sku": "KOPI", "name": "Kopi", "price": 11_000}),
    );
    assert_eq!(status, 201, "{v}");

    // Everything above, in the audit trail, with who approved it.
    let audit = t.get("/v1/audit").1;
    let entries = audit["entries"].as_array().expect("entries").clone();
    let has = |action: &str, user: Option<&str>, approver: Option<&str>| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["user"].as_str() == user
                && e["approved_by"].as_str() == approver
        })
    };
    assert!(has("login_failed", Some("Ani"), None), "{audit}");
    assert!(has("login", Some("Ani"), None), "{audit}");
    assert!(has("sale", Some("Ani"), Some("Sari")), "{audit}");
    assert!(has("sale", Some("Ani"), None), "{audit}");
    assert!(has("stock_adjust", Some("Ani"), Some("Sari")), "{audit}");
    assert!(has("stock_receive", Some("Ani"), None), "{audit}");
    assert!(has("reprint", Some("Ani"), Some("Sari")), "{audit}");
    assert!(has("profile_change", None, None), "{audit}");
    assert!(has("price_change", None, None), "{audit}");
    assert!(
        entries.iter().any(|e| e["action"] == "drawer_open"
            && e["approved_by"] == "Sari"
            && e["detail"] == "tukar uang receh"),
        "{audit}"
    );
    assert!(
        has("user_add", None, None),
        "users added with `kasir user add`: {audit}"
    );
    let times: Vec<i64> = entries
        .iter()
        .map(|e| e["at_ms"].as_i64().expect("at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    // The command prints the same trail and report, through the daemon.
    assert_eq!(t.ok(&["audit"]), audit);
    assert_eq!(t.ok(&["report", "z"]), t.get("/v1/reports/z").1);

    // Shifts from the command line, with the daemon running…
    let opened = t.ok(&["shift", "open", "--cashier", "Ani", "--cash", "100000"]);
    assert!(opened["shift_id"].is_string(), "{opened}");
    t.ok(&[
        "shift", "cash", "--kind", "out", "--amount", "15000", "--note", "beli es",
    ]);
    let closed = t.ok(&["shift", "close", "--counted", "85000"]);
    assert_eq!(
        (&closed["expected_cash"], &closed["difference"]),
        (&json!(85_000), &json!(0)),
        "{closed}"
    );
    // …and without it.
    t.shutdown();
    t.ok(&["shift", "open", "--cashier", "Ani", "--cash", "50000"]);
    let err = t.fails(&["shift", "open", "--cashier", "Ani", "--cash", "0"]);
    assert!(err.contains("still open"), "{err}");
    let closed = t.ok(&["shift", "close", "--counted", "50000"]);
    assert_eq!(closed["difference"], 0, "{closed}");
    let audit = t.ok(&["audit"]);
    assert!(
        audit["entries"].as_array().is_some_and(|es| es
            .iter()
            .filter(|e| e["action"] == "shift_close")
            .count()
            == 2),
        "{audit}"
    );
}
