//! Units and grosir at a real till: a product sold by the piece, the pak and the dus
//! (a carton's own barcode sells a dus), grosir prices by quantity on a line, stock kept
//! as one sum in pieces through sales, a refund of a dus and a void; a unit the product
//! does not have, or a malformed unit or tier, refused with nothing written.
#![allow(missing_docs)]

mod support;

use kasir_testkit::Till;
use serde_json::json;
use support::receipt;

const DUS_BARCODE: &str = "18998866200578";

/// `kasir product add` of Indomie, before the flags that change it.
const EDIT_IDM: [&str; 8] = [
    "product",
    "add",
    "--sku",
    "IDM",
    "--name",
    "Indomie Goreng",
    "--price",
    "3.500",
];

fn on_hand(till: &Till, sku: &str) -> f64 {
    till.ok(&["stock", "--sku", sku])["stock"][0]["on_hand"]
        .as_f64()
        .expect("on_hand")
}

#[test]
fn money_units_sell_from_their_barcodes_and_grosir_prices_by_quantity() {
    let mut till = Till::init_named("Toko Grosir Rejeki", "T1");
    till.add_product(
        "IDM",
        "Indomie Goreng",
        "3.500",
        "100",
        &[
            "--sell-unit",
            &format!("dus=40:120.000:{DUS_BARCODE}"),
            "--sell-unit",
            "pak=5:17.000",
            "--tier",
            "10:3.300",
            "--tier",
            "20:3.200",
        ],
    );

    // A carton scanned: one dus at its own price, forty pieces out of stock.
    let dus = till.ok(&["sell", "--item", DUS_BARCODE]);
    assert_eq!(dus["total"], 120_000, "{dus}");
    assert_eq!(on_hand(&till, "IDM"), 60.0);
    assert!(receipt(&till, &dus).contains("Indomie Goreng (dus)"));
    // Grosir: 12 pieces at 3.300, 25 at 3.200, 9 at the shelf price.
    for (qty, total) in [(12, 39_600), (25, 80_000), (9, 31_500)] {
        let sale = till.ok(&["sell", "--item", &format!("IDMx{qty}")]);
        assert_eq!(sale["total"], total, "{qty} pieces: {sale}");
    }
    assert_eq!(on_hand(&till, "IDM"), 14.0);

    till.start(&[]);
    // By the API: two pak by name.
    let (status, pak) = till.post(
        "/v1/sales",
        &json!({"lines": [{"sku": "IDM", "qty": 2, "unit": "pak"}]}),
    );
    assert_eq!(status, 201, "{pak}");
    assert_eq!(pak["total"], 34_000);
    assert_eq!(till.get("/v1/stock?sku=IDM").1["stock"][0]["on_hand"], 4.0);
    let (status, v) = till.post(
        "/v1/sales",
        &json!({"lines": [{"sku": "IDM", "qty": 1, "unit": "karton"}]}),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    // One more pak with 4 pieces left: sold (the shelf is the truth), stock oversold.
    let (status, v) = till.post(
        "/v1/sales",
        &json!({"lines": [{"sku": "IDM", "qty": 1, "unit": "pak"}], "payments": []}),
    );
    assert_eq!(status, 201, "{v}");
    // The product lists its units and tiers.
    let (_, products) = till.get("/v1/products?q=Indomie");
    let idm = &products["products"][0];
    assert_eq!(idm["units"][0]["name"], "dus", "{idm}");
    assert_eq!(idm["units"][0]["per"], 40.0, "{idm}");
    assert_eq!(idm["tiers"][0]["min_qty"], 10.0, "{idm}");

    // One dus comes back: forty pieces; the pak sale voided: ten.
    let dus_id = dus["sale_id"].as_str().expect("id");
    let (status, refund) = till.post(
        &format!("/v1/sales/{dus_id}/refund"),
        &json!({"lines": [{"sku": "IDM", "qty": 1}], "reason": "salah beli"}),
    );
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["amount"], 120_000, "{refund}");
    let pak_id = pak["sale_id"].as_str().expect("id");
    let (status, v) = till.post(
        &format!("/v1/sales/{pak_id}/void"),
        &json!({"reason": "batal"}),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        till.get("/v1/stock?sku=IDM").1["stock"][0]["on_hand"],
        -1.0 + 40.0 + 10.0,
        "one pak (5) was sold after the 4 left: -1, then the dus and the voided paks back"
    );
    till.shutdown();

    // Malformed units and tiers are refused and change nothing.
    for bad in [
        ["--sell-unit", "dus=0:120.000"],
        ["--sell-unit", "dus40:120.000"],
        ["--tier", "10"],
        ["--tier", "0:3.000"],
    ] {
        let mut args = EDIT_IDM.to_vec();
        args.extend_from_slice(&bad);
        till.fails(&args);
    }
    let dus = till.ok(&["sell", "--item", DUS_BARCODE]);
    assert_eq!(dus["total"], 120_000, "the units stayed");
    // Removed, the carton's barcode sells nothing.
    till.ok(&[EDIT_IDM.as_slice(), &["--clear-units"]].concat());
    let refused = till.fails(&["sell", "--item", DUS_BARCODE]);
    assert!(refused.contains(DUS_BARCODE), "{refused}");
    let sale = till.ok(&["sell", "--item", "IDMx12"]);
    assert_eq!(sale["total"], 42_000, "no grosir price left");
}
