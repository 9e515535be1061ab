//! Kasbon in the till app, in a real headless Chromium against a real daemon: the
//! cashier adds Bu Tini on Pelanggan, rings up a bill, takes a down payment in cash and
//! puts the rest on her kasbon with a due date (the struk names her and the date);
//! Pelanggan shows what she owes and takes a repayment into the drawer; a bill split
//! between QRIS and cash offers the cash rest already rounded to a coin.

use std::path::PathBuf;

use kasir_testkit::Till;
use kasir_testkit::browser::Browser;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

#[test]
fn ui_browser_kasbon_down_payment_rest_on_credit_then_repaid() {
    let mut till = Till::with_owner("Warung Bu Sri", "T1", "Bu Sri", "482916");
    till.add_user("Ani", "cashier", "1111");
    till.add_product(
        "BERAS",
        "Beras Rojo Lele 5kg",
        "74.000",
        "50",
        &["--barcode", "8991001000013"],
    );
    till.add_product(
        "GULA",
        "Gulaku 1kg",
        "17.530",
        "50",
        &["--barcode", "8991001000020"],
    );
    till.ok(&["store", "set", "--cash-rounding", "100"]);
    till.start(&[]);
    let base = till.running().base.clone();
    let b = Browser::start("kasbon", &shots());
    b.log_in(&base, "Ani", "1111");
    b.open_shift("100000");

    // A new customer on Pelanggan.
    b.goto(&format!("{base}/ui/pelanggan"));
    b.wait_until("Pelanggan", |b| b.count("#customer-form") == 1);
    b.type_into("#customer-form input[name=name]", "Bu Tini");
    b.type_into("#customer-form input[name=phone]", "0812-1111-2222");
    b.click("#customer-save");
    b.wait_until("Bu Tini listed", |b| {
        b.text("#customers").contains("Bu Tini")
    });

    // Beras: Rp24.000 down in cash, the Rp50.000 rest on kasbon until 31 Jan 2099.
    b.goto(&format!("{base}/ui/kasir"));
    b.type_into("#scan", "8991001000013\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp74.000");
    b.click("#pay");
    b.find("#pay-cash");
    b.type_into("#cash-amount", "24000");
    b.click("#pay-cash button");
    b.wait_until("the down payment", |b| {
        b.count("#pay-remaining") == 1 && b.text("#pay-remaining") == "Rp50.000"
    });
    b.find("#pay-kasbon");
    b.screenshots("bayar-kasbon");
    b.execute(
        "const s = document.getElementById('kasbon-customer'); \
         s.value = [...s.options].find(o => o.text.startsWith('Bu Tini')).value; \
         document.getElementById('kasbon-due').value = '2099-01-31'; return 1",
    );
    b.click("#kasbon-submit");
    b.find("#receipt-total");
    let struk = b.text("body");
    for needle in ["Pelanggan: Bu Tini", "Jatuh tempo: 31/01/2099", "KASBON"] {
        assert!(struk.contains(needle), "missing {needle:?} in:\n{struk}");
    }
    b.screenshots("struk-kasbon");

    // Pelanggan: she owes Rp50.000; she pays Rp20.000 back in cash.
    b.goto(&format!("{base}/ui/pelanggan"));
    let row = "#customers tr:first-child";
    b.wait_until("her balance", |b| {
        b.text(&format!("{row} td.balance")) == "Rp50.000"
    });
    assert!(b.text(&format!("{row} td.due")).contains("31/01/2099"));
    b.type_into(&format!("{row} form.pay-debt input[name=amount]"), "20.000");
    b.click(&format!("{row} form.pay-debt button"));
    b.wait_until("the repayment", |b| {
        b.text(&format!("{row} td.balance")) == "Rp30.000"
    });
    assert_eq!(b.text("#total-owed"), "Rp30.000");
    b.screenshots("pelanggan");
    // More than she owes is refused, with the reason on the page.
    b.type_into(&format!("{row} form.pay-debt input[name=amount]"), "90000");
    b.click(&format!("{row} form.pay-debt button"));
    b.wait_until("the refusal", |b| b.count("#customers-result.error") == 1);
    assert_eq!(b.text(&format!("{row} td.balance")), "Rp30.000");
    let (_, customers) = till.get("/v1/customers");
    assert_eq!(customers["customers"][0]["balance"], 30_000, "{customers}");

    // QRIS Rp10.000 on Rp17.530: the cash rest is offered rounded down, Rp7.500.
    b.goto(&format!("{base}/ui/kasir"));
    b.type_into("#scan", "8991001000020\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp17.500");
    b.click("#pay");
    b.find("#pay-other");
    b.execute("document.getElementById('other-amount').value = ''; return 1");
    b.type_into("#other-amount", "10000");
    b.type_into("#reference", "RRN 55501");
    b.click("#pay-submit");
    b.wait_until("the cash rest, rounded", |b| {
        b.count("#pay-remaining") == 1 && b.text("#pay-remaining") == "Rp7.500"
    });
    b.click("button[data-amount='7500']");
    b.find("#receipt-total");
    assert_eq!(b.text("#receipt-total"), "Rp17.500");
    assert!(b.js_errors().is_empty(), "{:?}", b.js_errors());
}
