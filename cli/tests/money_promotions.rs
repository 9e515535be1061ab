//! Promotions at a real till: buy 2 get 1 free, a bundle price, a member's price for a
//! customer with a member tier, each only between its dates; the struk names the
//! promotion; a cashier needs no supervisor for a promotion (only for discounts she
//! types); a promotion that makes no sense is refused.
#![allow(missing_docs)]

mod support;

use kasir_testkit::Till;
use serde_json::json;
use support::receipt;

#[test]
fn money_promotions_apply_in_their_days_and_print_on_the_struk() {
    let mut till = Till::with_owner("Minimarket Sejahtera", "T1", "Pak Joko", "482916");
    till.add_user("Ani", "cashier", "1111");
    till.add_product(
        "TEH",
        "Teh Pucuk 350ml",
        "4.000",
        "50",
        &["--promo", "beli:2+1@2020-01-01..2099-12-31"],
    );
    till.add_product(
        "ROTI",
        "Roti Sobek",
        "3.500",
        "50",
        &["--promo", "paket:3:10.000"],
    );
    till.add_product(
        "KOPI",
        "Kopi Sachet",
        "3.500",
        "50",
        &[
            "--promo",
            "member:3.000",
            // Over, and not yet begun: neither applies.
            "--promo",
            "beli:1+1@2020-01-01..2020-01-31",
            "--promo",
            "paket:2:1.000@2099-01-01..",
        ],
    );
    let refused = till.fails(&[
        "product", "add", "--sku", "TEH", "--name", "Teh", "--price", "4.000", "--promo",
        "beli:0+1",
    ]);
    assert!(refused.contains("promotion"), "{refused}");
    let refused = till.fails(&[
        "product",
        "add",
        "--sku",
        "TEH",
        "--name",
        "Teh",
        "--price",
        "4.000",
        "--promo",
        "paket:3:10.000@2026-12-31..2026-12-01",
    ]);
    assert!(refused.contains("before it starts"), "{refused}");

    // Three teas, two paid; the struk says why.
    let teh = till.ok(&["sell", "--item", "TEHx3"]);
    assert_eq!(teh["total"], 8_000, "{teh}");
    let text = receipt(&till, &teh);
    assert!(text.contains("Beli 2 gratis 1"), "{text}");
    // Four bread: a bundle of three for 10.000 and one at 3.500.
    let roti = till.ok(&["sell", "--item", "ROTIx4"]);
    assert_eq!(roti["total"], 13_500, "{roti}");
    assert!(receipt(&till, &roti).contains("3 seharga Rp10.000"));
    // The member's price only for a member; expired and future promotions do nothing.
    let kopi = till.ok(&["sell", "--item", "KOPIx2"]);
    assert_eq!(kopi["total"], 7_000, "{kopi}");
    let member = till.ok(&["customer", "add", "--name", "Bu Tini", "--tier", "member"]);
    let member_id = member["customer_id"]
        .as_str()
        .expect("customer id")
        .to_owned();
    let guest = till.ok(&["customer", "add", "--name", "Pak Budi"]);
    let guest_id = guest["customer_id"]
        .as_str()
        .expect("customer id")
        .to_owned();
    let kopi = till.ok(&["sell", "--item", "KOPIx2", "--customer", &member_id]);
    assert_eq!(kopi["total"], 6_000, "{kopi}");
    assert!(receipt(&till, &kopi).contains("Harga member"));
    let kopi = till.ok(&["sell", "--item", "KOPIx2", "--customer", &guest_id]);
    assert_eq!(
        kopi["total"], 7_000,
        "a customer without a tier pays the shelf price"
    );

    // A cashier gives a promotion without a supervisor; a typed discount still asks.
    till.start(&[]);
    let ani = till.login("Ani", "1111");
    let (status, v) = till.post_as(
        "/v1/sales",
        &json!({"lines": [{"sku": "TEH", "qty": 6}]}),
        &ani,
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["total"], 16_000);
    let (status, v) = till.post_as(
        "/v1/sales",
        &json!({"lines": [{"sku": "TEH", "qty": 3, "discount_percent": 50}]}),
        &ani,
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("approval_required")),
        "{v}"
    );
    let (_, sale) = till.get(&format!(
        "/v1/sales/{}",
        teh["sale_id"].as_str().expect("id")
    ));
    assert_eq!(
        sale["lines"][0]["promo"]["label"], "Beli 2 gratis 1",
        "{sale}"
    );
    assert_eq!(sale["lines"][0]["promo"]["discount"], 4_000, "{sale}");
}
