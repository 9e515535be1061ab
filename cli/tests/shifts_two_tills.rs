//! Shifts are per till (contract, "People and permissions"): two tills, two cashiers,
//! shifts opened and worked offline, then synced and closed. Each close accounts only
//! for its own till — sales, voids, cash in and out — however much of the other till
//! it now knows; the Z-report (on either till) equals the sum of the shifts. Real
//! daemons, real HTTP, real iroh sync.

use std::collections::BTreeMap;

use kasir_testkit::{Till, wait_for};
use serde_json::{Value, json};

const OWNER_PIN: &str = "24681357";

fn by_method(v: &Value) -> BTreeMap<String, i64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, a)| (k.clone(), a.as_i64().expect("amount")))
                .collect()
        })
        .unwrap_or_default()
}

fn sell(t: &Till, auth: &str, lines: &[(&str, u32)], payments: Value) -> (String, i64) {
    let body = json!({
        "lines": lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>(),
        "payments": payments,
    });
    let (status, v) = t.post_as("/v1/sales", &body, auth);
    assert_eq!(status, 201, "sale: {v}");
    (
        v["sale_id"].as_str().expect("id").to_owned(),
        v["total"].as_i64().expect("total"),
    )
}

#[test]
fn shifts_two_tills_close_only_their_own_money_and_add_up_to_the_z_report() {
    // Till A is the owner's; the owner adds the cashiers and a supervisor.
    let mut a = Till::with_owner("Toko Dua Kasir", "A1", "Pak Harto", OWNER_PIN);
    for (name, role, pin) in [
        ("Ani", "cashier", "1111"),
        ("Budi", "cashier", "2222"),
        ("Sari", "supervisor", "3333"),
    ] {
        a.add_user(name, role, pin);
    }
    for (sku, price) in [("KOPI", "5000"), ("ROTI", "12000")] {
        a.ok(&[
            "product", "add", "--sku", sku, "--name", sku, "--price", price, "--stock", "100",
        ]);
    }
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    wait_for(30, "the users and catalog to reach B", || {
        let (status, _) = b.running().post_as(
            "/v1/sessions",
            json!({"name": "Budi", "pin": "2222"})
                .to_string()
                .as_bytes(),
            "",
        );
        let (_, products) = b.get("/v1/products?q=ROTI");
        (status == 201
            && products["products"]
                .as_array()
                .is_some_and(|p| !p.is_empty()))
        .then_some(())
    });
    b.shutdown();

    // Offline, till A: Ani opens with Rp100.000, sells twice in cash, one sale is
    // voided with Sari's approval, Rp20.000 go out for the water delivery.
    let ani = a.login("Ani", "1111");
    let (status, opened) = a.post_as("/v1/shifts/open", &json!({"opening_cash": 100_000}), &ani);
    assert_eq!(status, 201, "{opened}");
    let a_shift = opened["shift_id"].as_str().expect("shift").to_owned();
    let (status, again) = a.post_as("/v1/shifts/open", &json!({"opening_cash": 0}), &ani);
    assert_eq!(status, 409, "one open shift per till: {again}");
    sell(
        &a,
        &ani,
        &[("KOPI", 2)],
        json!([{"method": "cash", "amount": 20_000}]),
    );
    let (voided, _) = sell(&a, &ani, &[("ROTI", 1)], json!([]));
    let (status, v) = a.post_as(
        &format!("/v1/sales/{voided}/void"),
        &json!({"reason": "salah input", "approval": {"name": "Sari", "pin": "3333"}}),
        &ani,
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = a.post_as(
        "/v1/shifts/cash",
        &json!({"kind": "out", "amount": 20_000, "note": "bayar galon"}),
        &ani,
    );
    assert_eq!(status, 201, "{v}");
    a.shutdown();

    // Offline, till B: Budi opens with Rp50.000, sells for cash and QRIS, puts Rp10.000
    // of coins in.
    b.start(&[]);
    let budi = b.login("Budi", "2222");
    let (status, opened) = b.post_as("/v1/shifts/open", &json!({"opening_cash": 50_000}), &budi);
    assert_eq!(
        status, 201,
        "B opens its own shift while A's is open: {opened}"
    );
    let b_shift = opened["shift_id"].as_str().expect("shift").to_owned();
    sell(
        &b,
        &budi,
        &[("ROTI", 2)],
        json!([{"method": "qris", "amount": 24_000}]),
    );
    sell(
        &b,
        &budi,
        &[("KOPI", 1)],
        json!([{"method": "cash", "amount": 10_000}]),
    );
    let (status, v) = b.post_as(
        "/v1/shifts/cash",
        &json!({"kind": "in", "amount": 10_000, "note": "tambah receh"}),
        &budi,
    );
    assert_eq!(status, 201, "{v}");
    b.shutdown();

    // Back online: both tills know all four sales before closing.
    a.start(&[]);
    b.start(&[a.peer_arg()]);
    for t in [&a, &b] {
        wait_for(60, "every sale on both tills", || {
            (t.get("/v1/sales").1["sales"].as_array().map(Vec::len) == Some(4)).then_some(())
        });
    }
    let (_, current) = a.get("/v1/shifts/current");
    assert_eq!(current["shift"]["shift_id"], a_shift.as_str(), "{current}");
    let (_, current) = b.get("/v1/shifts/current");
    assert_eq!(current["shift"]["shift_id"], b_shift.as_str(), "{current}");

    // A counts Rp500 short; B counts exactly.
    let (status, a_close) = a.post_as("/v1/shifts/close", &json!({"counted_cash": 109_500}), &ani);
    assert_eq!(status, 200, "{a_close}");
    assert_eq!(a_close["shift_id"], a_shift.as_str());
    // 100.000 opening + 10.000 (KOPI×2) − 20.000 out; the voided sale gave its money back.
    assert_eq!(a_close["expected_cash"], 90_000, "{a_close}");
    assert_eq!(a_close["counted_cash"], 109_500);
    assert_eq!(a_close["difference"], 19_500, "{a_close}");
    assert_eq!(
        by_method(&a_close["by_method"]),
        BTreeMap::from([("cash".to_owned(), 10_000)]),
        "{a_close}"
    );
    let (status, b_close) = b.post_as("/v1/shifts/close", &json!({"counted_cash": 65_000}), &budi);
    assert_eq!(status, 200, "{b_close}");
    assert_eq!(b_close["shift_id"], b_shift.as_str());
    // 50.000 opening + 5.000 (KOPI) + 10.000 in; the QRIS money is not in the drawer.
    assert_eq!(b_close["expected_cash"], 65_000, "{b_close}");
    assert_eq!(b_close["difference"], 0);
    assert_eq!(
        by_method(&b_close["by_method"]),
        BTreeMap::from([("cash".to_owned(), 5_000), ("qris".to_owned(), 24_000)]),
        "{b_close}"
    );
    let (status, v) = b.post_as("/v1/shifts/close", &json!({"counted_cash": 0}), &budi);
    assert_eq!(status, 409, "nothing left open on B: {v}");

    // The Z-report, on either till once synced, is the sum of the shifts.
    let z_of = |t: &Till| t.get("/v1/reports/z").1;
    wait_for(60, "the closes to sync", || {
        (z_of(&a) == z_of(&b) && z_of(&a)["tills"].as_array().map(Vec::len) == Some(2))
            .then_some(())
    });
    let z = z_of(&a);
    let till = |code: &str| {
        z["tills"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["till_code"] == code))
            .cloned()
            .unwrap_or_else(|| panic!("till {code} in {z}"))
    };
    for close in [&a_close, &b_close] {
        let code = close["till_code"].as_str().expect("till code");
        let t = till(code);
        assert_eq!(
            by_method(&t["by_method"]),
            by_method(&close["by_method"]),
            "{code}: {t}"
        );
        assert_eq!(t["cash_expected"], close["expected_cash"], "{code}: {t}");
    }
    let mut sum = BTreeMap::new();
    for close in [&a_close, &b_close] {
        for (m, v) in by_method(&close["by_method"]) {
            *sum.entry(m).or_insert(0) += v;
        }
    }
    assert_eq!(by_method(&z["store"]["by_method"]), sum, "{z}");
    assert_eq!(z["store"]["sales"], 4, "{z}");
    assert_eq!(z["store"]["voids"], 12_000, "{z}");
    assert_eq!(z["store"]["void_count"], 1, "{z}");
    assert_eq!(z["store"]["net"], 10_000 + 24_000 + 5_000, "{z}");
    assert_eq!(z["store"]["cash_in"], 10_000);
    assert_eq!(z["store"]["cash_out"], 20_000);

    // The audit trail names who did what, where, approved by whom — on both tills.
    let audit = a.get("/v1/audit").1;
    let entries = audit["entries"].as_array().expect("entries");
    let find = |action: &str, user: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["user"] == user)
            .unwrap_or_else(|| panic!("{action} by {user} in {audit}"))
    };
    assert_eq!(find("void", "Ani")["approved_by"], "Sari");
    assert_eq!(
        find("shift_open", "Budi")["till_code"],
        b_close["till_code"]
    );
    assert_eq!(find("shift_open", "Ani")["till_code"], "A1");
    find("cash_out", "Ani");
    find("cash_in", "Budi");
    find("shift_close", "Ani");
    find("login", "Budi");
    find("sale", "Budi");
}
