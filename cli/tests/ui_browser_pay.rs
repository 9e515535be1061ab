//! Bayar and the struk in a real headless Chromium against a real daemon with a printer
//! on TCP (a listener in the test records what the till sends, as a LAN printer would):
//! a bill paid partly by QRIS with its reference and the rest in cash, the struk shown in
//! place and printed on its own; a reprint (SALINAN) needs a supervisor's PIN; a printer
//! that is off is a toast while the next sale goes through.

use std::path::PathBuf;
use std::time::Duration;

use kasir_testkit::browser::Browser;
use kasir_testkit::{Till, printed, tcp_printer};
use serde_json::json;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

#[test]
fn ui_browser_pay_split_with_reference_struk_printed_reprint_approved_printer_off() {
    let mut till = Till::with_owner("Warung Bu Sri", "T1", "Bu Sri", "482916");
    till.add_user("Ani", "cashier", "1111");
    till.add_user("Sari", "supervisor", "3333");
    for (sku, name, price, barcode) in [
        ("IDM", "Indomie Goreng", "3500", "8998866200578"),
        ("TEH", "Teh Botol Sosro", "5000", "8886008101053"),
    ] {
        till.add_product(sku, name, price, "50", &["--barcode", barcode]);
    }
    // Two jobs print (the sale's struk, then its reprint); then the printer is off.
    let (port, jobs) = tcp_printer(2);
    std::fs::write(
        till.path().join("printer.json"),
        json!({"uri": format!("tcp://127.0.0.1:{port}"), "profile": "58", "attempts": 2, "backoff_ms": 100})
            .to_string(),
    )
    .expect("printer.json");
    till.start(&[]);
    let base = till.running().base.clone();
    let b = Browser::start("pay", &shots());

    b.log_in(&base, "Ani", "1111");
    b.open_shift("50000");
    b.type_into("#scan", "2x8998866200578\n");
    b.type_into("#scan", "8886008101053\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp12.000");

    // Rp5.000 by QRIS with the acquirer's reference; the rest waits for cash.
    b.click("#pay");
    b.find("#pay-other");
    b.execute("document.getElementById('other-amount').value = ''; return 1");
    b.type_into("#other-amount", "5000");
    b.type_into("#reference", "RRN 412345");
    b.click("#pay-submit");
    b.wait_until("the part payment", |b| {
        b.count("#pay-remaining") == 1 && b.text("#pay-remaining") == "Rp7.000"
    });
    assert!(
        b.text("#paid").contains("RRN 412345"),
        "{}",
        b.text("#paid")
    );
    b.screenshots("bayar-sebagian");
    let (_, sales) = till.get("/v1/sales");
    assert_eq!(
        sales["sales"].as_array().map(Vec::len),
        Some(0),
        "nothing sold before the bill is covered"
    );

    // A reload keeps the part payment (it lives in the till's SQLite, not the page).
    b.goto(&format!("{base}{}", b.path()));
    b.wait_until("the part payment after a reload", |b| {
        b.count("#pay-remaining") == 1 && b.text("#pay-remaining") == "Rp7.000"
    });

    // Rp10.000 in cash covers the rest: Rp3.000 change, the struk in place.
    let pay_path = b.path();
    b.click("button[data-amount='10000']");
    b.find("#receipt-change");
    assert_eq!(b.text("#receipt-total"), "Rp12.000");
    assert_eq!(b.text("#receipt-change"), "Rp3.000");
    let struk = b.text("#struk");
    assert!(
        struk.contains("QRIS") && struk.contains("Ref RRN 412345"),
        "{struk}"
    );
    assert!(b.path().starts_with("/ui/struk/"), "{}", b.path());
    let original = jobs
        .recv_timeout(Duration::from_secs(30))
        .expect("the struk printed on its own");
    assert!(printed(&original, "RRN 412345") && !printed(&original, "SALINAN"));
    b.wait_until("the printed toast", |b| {
        b.text("#printer").contains("tercetak")
    });
    b.screenshots("struk-split");
    assert_eq!(b.js_errors(), Vec::<String>::new());

    // A second tap on Bayar (replayed as the button sends it) finds the sale: the same
    // struk, no second sale, and no second original in the print queue (the next job
    // to reach the printer below must be the approved copy).
    let again = b.execute(&format!(
        "var x = new XMLHttpRequest(); x.open('POST', '{pay_path}', false); \
         x.setRequestHeader('HX-Request', 'true'); \
         x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded'); \
         x.send('method=cash&amount=10000&reference='); return x.responseText;"
    ));
    assert!(
        again.as_str().is_some_and(|t| t.contains("receipt-change")),
        "{again}"
    );

    let (_, sales) = till.get("/v1/sales");
    assert_eq!(sales["sales"].as_array().map(Vec::len), Some(1), "{sales}");
    let sale_id = sales["sales"][0]["sale_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, detail) = till.get(&format!("/v1/sales/{sale_id}"));
    assert_eq!(
        detail["payments"],
        json!([
            // A static QRIS: Ani saw it on the merchant's app, and the sale says so.
            {"method": "qris", "amount": 5000, "reference": "RRN 412345", "confirmed_by": "Ani"},
            {"method": "cash", "amount": 10000}
        ]),
        "{detail}"
    );

    // A reprint is a supervisor's: asked for, then given with Sari's PIN.
    b.click("details.reprint summary");
    b.click("#reprint");
    b.wait_until("the approval question", |b| {
        b.text("#printer").contains("PIN supervisor")
    });
    b.type_into("details.reprint input[name=approver]", "Sari");
    b.type_into("details.reprint input[name=approver_pin]", "3333");
    b.click("#reprint");
    let copy = jobs
        .recv_timeout(Duration::from_secs(30))
        .expect("the reprint");
    assert!(printed(&copy, "SALINAN"), "a reprint is marked as a copy");
    let (_, audit) = till.get("/v1/audit");
    let reprints: Vec<_> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "reprint")
        .collect();
    assert_eq!(reprints.len(), 1, "{audit}");
    assert_eq!(reprints[0]["approved_by"], "Sari");

    // The printer is off now: the next sale goes through, the toast says so.
    b.click("#new-sale");
    b.find("#scan");
    b.type_into("#scan", "8886008101053\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp5.000");
    b.click("#pay");
    b.click("#pay-form button");
    b.find("#receipt-change");
    assert_eq!(b.text("#receipt-total"), "Rp5.000");
    b.wait_until("the printer-off toast", |b| {
        b.text("#printer").contains("tidak merespons")
    });
    b.screenshots("struk-printer-mati");
    let (_, sales) = till.get("/v1/sales");
    assert_eq!(sales["sales"].as_array().map(Vec::len), Some(2));
    assert_eq!(b.js_errors(), Vec::<String>::new());
}
