//! Dynamic QRIS in the till app, in a real headless Chromium against a real daemon and
//! the simulated acquirer (`kasir_node::qris::sim`: a real acquirer cannot be reached
//! from these machines): Bayar shows the QR for the exact amount and waits; the
//! customer pays and the page turns into the struk by itself (QRIS with its RRN); the QR
//! printed on paper carries exactly the acquirer's payload (and then the struk prints);
//! a QR left to expire says so and leads back to Bayar, with nothing sold.

mod support;

use std::path::PathBuf;

use kasir_testkit::browser::Browser;
use kasir_testkit::{Till, printed, tcp_printer};
use support::Sim;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

#[test]
fn ui_browser_qris_paid_turns_into_the_struk_expired_goes_back() {
    let sim = Sim::start();
    let mut till = Till::with_owner("Kedai Senja", "T1", "Bu Sri", "482916");
    till.add_user("Ani", "cashier", "1111");
    till.add_product(
        "KOPI",
        "Es Kopi Susu",
        "18.000",
        "50",
        &["--barcode", "8991002000012"],
    );
    // The QR slip, then the struk; then the printer is off.
    let (port, jobs) = tcp_printer(2);
    std::fs::write(
        till.path().join("printer.json"),
        serde_json::json!({"uri": format!("tcp://127.0.0.1:{port}"), "profile": "58",
                           "attempts": 2, "backoff_ms": 100})
        .to_string(),
    )
    .expect("printer.json");
    till.start(&[]);
    let base = till.running().base.clone();
    sim.configure(till.path(), &base);
    let b = Browser::start("qris", &shots());
    b.log_in(&base, "Ani", "1111");
    b.open_shift("100000");

    b.type_into("#scan", "2x8991002000012\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp36.000");
    b.click("#pay");
    b.find("#qris-dynamic");
    b.click("#qris-dynamic");
    b.wait_until("the QR", |b| b.count("#qris-code svg") == 1);
    assert_eq!(b.text("#qris-amount"), "Rp36.000");
    b.screenshots("qris-tunggu");
    let (_, sales) = till.get("/v1/sales");
    assert_eq!(
        sales["sales"].as_array().map(Vec::len),
        Some(0),
        "nothing sold yet"
    );

    // The customer pays; no callback reaches the till: its own poll finds it.
    let charge = sim.charges()[0]["charge_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The customer cannot see the screen: the QR on paper.
    b.click("#qris-print");
    b.wait_until("printed", |b| b.text("#qris-printed").contains("dicetak"));
    let slip = jobs
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the QR slip");
    let (_, shown) = till.get(&format!("/v1/qris/charges/{charge}"));
    let payload = shown["qr_string"].as_str().expect("qr string");
    assert!(
        printed(&slip, payload),
        "the slip carries the acquirer's QR payload"
    );
    assert!(printed(&slip, "Rp36.000"));
    let paid = sim.act(&charge, "pay", false);
    let rrn = paid["rrn"].as_str().expect("rrn").to_owned();
    b.wait_until("the struk", |b| b.count("#receipt-total") == 1);
    assert_eq!(b.text("#receipt-total"), "Rp36.000");
    let struk = b.text("body");
    assert!(struk.contains("QRIS") && struk.contains(&rrn), "{struk}");
    b.screenshots("qris-struk");

    // The next bill's QR expires unpaid: said, back to Bayar, nothing sold.
    b.goto(&format!("{base}/ui/kasir"));
    b.type_into("#scan", "8991002000012\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp18.000");
    b.click("#pay");
    b.find("#qris-dynamic");
    b.click("#qris-dynamic");
    b.wait_until("the second QR", |b| b.count("#qris-code svg") == 1);
    let second = sim
        .charges()
        .iter()
        .find(|c| c["status"] == "pending")
        .and_then(|c| c["charge_id"].as_str().map(str::to_owned))
        .expect("a pending charge");
    sim.act(&second, "expire", false);
    b.wait_until("the expiry", |b| {
        b.text("#qris-status").contains("kedaluwarsa")
    });
    b.screenshots("qris-kedaluwarsa");
    b.click("#qris-back");
    b.wait_until("Bayar again", |b| b.count("#pay-form") == 1);
    let (_, sales) = till.get("/v1/sales");
    assert_eq!(
        sales["sales"].as_array().map(Vec::len),
        Some(1),
        "only the paid bill"
    );
    assert!(b.js_errors().is_empty(), "{:?}", b.js_errors());
}
