//! The shop owner sets the store profile (address, NPWP, tax rule, cash rounding) from
//! the CLI or the HTTP API, and receipts and totals follow it; invalid values are refused
//! with one line and change nothing.
#![allow(missing_docs)]

use kasir_testkit::Till;
use serde_json::json;

#[test]
fn tax_and_rounding_settings_reach_sales_and_receipts() {
    let till = Till::init();
    let p = till.ok(&[
        "store",
        "set",
        "--address",
        "Jl. Merdeka No. 10, Bandung",
        "--npwp",
        "01.234.567.8-901.234-5",
        "--tax",
        "ppn12",
        "--cash-rounding",
        "500",
        "--round-down",
        "true",
    ]);
    assert_eq!(p["npwp"], "0123456789012345");
    assert_eq!(p["tax_rule"]["kind"], "ppn");
    assert_eq!(p["tax_rule"]["base_num"], 11);
    till.ok(&[
        "product",
        "add",
        "--sku",
        "IDM",
        "--name",
        "Indomie Goreng Ayam",
        "--price",
        "3500",
    ]);
    let sale = till.ok(&["sell", "--item", "IDMx5"]);
    // 17.500 is already a multiple of Rp500: no rounding.
    assert_eq!(sale["total"], 17_500);
    let receipt = till.run(&["receipt", sale["sale_id"].as_str().expect("id")]);
    let text = String::from_utf8_lossy(&receipt.stdout);
    for needle in [
        "NPWP 0123456789012345",
        "DPP                       15.766",
        "PPN 12%                    1.734",
        "Harga sudah termasuk PPN",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    till.ok(&[
        "product", "add", "--sku", "GULA", "--name", "Gula", "--price", "17.300",
    ]);
    let rounded = till.ok(&["sell", "--item", "GULA"]);
    assert_eq!(rounded["total"], 17_000, "cash rounded down to Rp500");

    // Refused, one line, nothing changed.
    let before = till.ok(&["store", "show"]);
    assert!(
        till.fails(&["store", "set", "--npwp", "123"])
            .contains("NPWP")
    );
    assert!(
        till.fails(&["store", "set", "--tax", "vat"])
            .contains("unknown tax")
    );
    assert!(
        till.fails(&["store", "set", "--zone", "CET"])
            .contains("time zone")
    );
    assert_eq!(till.ok(&["store", "show"]), before);

    // The same through the daemon's HTTP API.
    let d = till.daemon();
    let (status, v) = d.post(
        "/v1/store",
        &json!({"tax": "none", "footer": "Sampai jumpa"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tax_rule"]["kind"], "none");
    assert_eq!(d.get("/v1/store").1["receipt_footer"], "Sampai jumpa");
    let (status, v) = d.post("/v1/store", &json!({"tax": "ppn99"}));
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "invalid_request");
    assert_eq!(
        till.ok(&["store", "show"])["receipt_footer"],
        "Sampai jumpa",
        "CLI goes through the daemon"
    );
}
